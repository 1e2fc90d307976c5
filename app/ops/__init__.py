"""Operator commands: collection migrations, Qdrant snapshots to S3 and restore, reindex into a new version."""
