"""The offline engine: runs the real program under Pulumi's mocks, records every registration and judges the
record (plan JSON, rendering, Kubernetes manifests, AWS values). No cloud account, no Pulumi CLI."""
