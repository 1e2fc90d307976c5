"""The app's secrets: which Kubernetes Secrets exist, and where in Secrets Manager each comes from.

The pods read them as files (container.secrets_volume, under SETTINGS_SECRETS_DIR), never as env vars; the file
names are the app's settings fields (api.py SECRETS, worker.py SECRETS). `llm-api-key` and `sentry-dsn` exist only
when the stack sets them; `frontend-auth` only with the frontend.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from infra.frontend_secret import SECRET_KEY as FRONTEND_SECRET
from infra.workloads.external_secrets import SecretSource
from infra.workloads.frontend import AUTH_SECRET as FRONTEND_AUTH_SECRET
from infra.workloads.frontend import SECRET_FILES as FRONTEND_SECRET_FILES


def app_secrets(
    names: Mapping[str, pulumi.Input[str]],
    *,
    cache_endpoint: pulumi.Input[str],
    cache_port: pulumi.Input[int],
    frontend: bool,
) -> dict[str, SecretSource]:
    """Kubernetes Secret -> its Secrets Manager source (`names`: WorkloadsArgs.secret_names)."""
    redis_url = pulumi.Output.concat(
        "rediss://:{{ .secret | urlquery }}@",
        cache_endpoint,
        ":",
        pulumi.Output.from_input(cache_port).apply(str),
        "/0",
    )
    # The jwt secret is JSON {issuer_url, audience, jwks_url, algorithms, provider}: one file per api setting.
    auth_template = {
        "auth_issuer_url": "{{ .issuer_url }}",
        "auth_audience": "{{ .audience }}",
        "auth_jwks_url": "{{ .jwks_url }}",
        "auth_algorithms": '{{ .algorithms | fromJson | join "," }}',
        # "cognito" for the stack's own user pool (access tokens carry client_id, not aud), else "oidc".
        "auth_provider": "{{ .provider }}",
    }
    sources = {"qdrant-api-key": SecretSource(remote_name=names["qdrant-api-key"])}
    # Optional: present only when the stack sets visionrag:llmApiKey (else /chat answers 503).
    if "llm-api-key" in names:
        sources["llm-api-key"] = SecretSource(remote_name=names["llm-api-key"])
    # The app takes one REDIS_URL; the TLS URL is assembled around the ElastiCache auth token.
    sources["redis-url"] = SecretSource(remote_name=names["cache-auth"], template={"value": redis_url})
    sources["api-auth"] = SecretSource(remote_name=names["jwt"], template=auth_template, extract=True)
    # Optional: present only when the stack sets visionrag:sentryDsn.
    if "sentry-dsn" in names:
        sources["sentry-dsn"] = SecretSource(remote_name=names["sentry-dsn"])
    # The frontend's Auth.js session secret and OIDC client secret (one JSON secret, two keys).
    if frontend:
        sources[FRONTEND_AUTH_SECRET] = SecretSource(
            remote_name=names[FRONTEND_SECRET],
            template={key: f"{{{{ .{key} }}}}" for key in FRONTEND_SECRET_FILES},
            extract=True,
        )
    return sources
