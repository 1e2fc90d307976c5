"""Qdrant snapshots to S3 and back: `python -m app.ops.snapshots create|list|prune|restore`.

`create` snapshots the collection behind the alias on EVERY node (each holds its own shards/replicas),
streams each file from the node, uploads it to the snapshots bucket with multipart upload and SSE-KMS, records
a manifest (node, key, size, sha256, schema version, point count) and deletes the snapshot from the node's
disk. `prune` keeps the newest `keep_last` runs and drops runs older than `max_age_days` (never the newest).
`restore` has each node recover its own snapshot straight from a presigned S3 URL (Qdrant downloads it and
verifies the sha256), then can point the alias at the restored collection. Runbook: docs/runbooks/qdrant-restore.md.
Every subcommand is audited (app/ops/audit_trail.py): exit 3 when the audit bucket cannot be written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from boto3.s3.transfer import TransferConfig
from qdrant_client import QdrantClient, models

from app.core.logging import configure_logging

log = logging.getLogger(__name__)
SseMode = Literal["none", "s3", "kms"]


@dataclass
class NodeSnapshot:
    node: str
    snapshot: str
    key: str
    size: int
    sha256: str


@dataclass
class Manifest:
    collection: str
    alias: str
    stamp: str
    created_at: str
    schema_version: int
    points: int
    nodes: list[NodeSnapshot] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        nodes = [NodeSnapshot(**n) for n in data.get("nodes", [])]
        return cls(**{**data, "nodes": nodes})


class SnapshotError(RuntimeError):
    pass


class SnapshotManager:
    def __init__(
        self,
        *,
        nodes: list[str],
        api_key: str | None,
        alias: str,
        s3: Any,
        bucket: str,
        prefix: str = "qdrant/",
        sse: SseMode = "kms",
        kms_key_id: str | None = None,
        keep_last: int = 14,
        max_age_days: int = 30,
        part_size_mb: int = 64,
        presign_ttl_s: int = 3600,
        timeout_s: float = 600.0,
    ) -> None:
        if not nodes:
            raise ValueError("nodes must list at least one Qdrant URL")
        if sse not in ("none", "s3", "kms"):
            raise ValueError(f"sse={sse!r}: allowed values are none, s3, kms")
        if sse == "kms" and not kms_key_id:
            raise ValueError("kms_key_id is required when sse='kms'")
        if keep_last < 1:
            raise ValueError(f"keep_last={keep_last}: must be >= 1 (the newest snapshot is never pruned)")
        self.nodes = [n.rstrip("/") for n in nodes]
        self.api_key = api_key
        self.alias = alias
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.keep_last = keep_last
        self.max_age_days = max_age_days
        self.presign_ttl_s = presign_ttl_s
        self.timeout_s = timeout_s
        part = part_size_mb * 1024 * 1024
        self.transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)

    # --- helpers ------------------------------------------------------------------------------------------------
    def _client(self, node: str) -> QdrantClient:
        return QdrantClient(url=node, api_key=self.api_key, timeout=int(self.timeout_s))

    def _extra_args(self) -> dict[str, str]:
        if self.sse == "kms":
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": str(self.kms_key_id)}
        if self.sse == "s3":
            return {"ServerSideEncryption": "AES256"}
        return {}

    def _run_prefix(self, stamp: str) -> str:
        return f"{self.prefix}{self.alias}/{stamp}/"

    def _resolve(self, client: QdrantClient) -> str:
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        target = aliases.get(self.alias)
        if target:
            return target
        if client.collection_exists(self.alias):
            return self.alias
        raise SnapshotError(f"no collection or alias named {self.alias!r} on {self.nodes[0]}")

    # --- create ---------------------------------------------------------------------------------------------------
    def create(self) -> Manifest:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        first = self._client(self.nodes[0])
        collection = self._resolve(first)
        info = first.get_collection(collection)
        manifest = Manifest(
            collection=collection,
            alias=self.alias,
            stamp=stamp,
            created_at=datetime.now(UTC).isoformat(),
            schema_version=int((info.config.metadata or {}).get("schema_version", 0)),
            points=int(info.points_count or 0),
        )
        for index, node in enumerate(self.nodes):
            manifest.nodes.append(self._snapshot_node(index, node, collection, stamp))
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self._run_prefix(stamp) + "manifest.json",
            Body=json.dumps(asdict(manifest), indent=2).encode(),
            ContentType="application/json",
            **self._extra_args(),
        )
        return manifest

    def _snapshot_node(self, index: int, node: str, collection: str, stamp: str) -> NodeSnapshot:
        client = self._client(node)
        described = client.create_snapshot(collection_name=collection, wait=True)
        if described is None:
            raise SnapshotError(f"{node}: Qdrant did not describe the snapshot it created")
        key = f"{self._run_prefix(stamp)}node-{index}/{described.name}"
        headers = {"api-key": self.api_key} if self.api_key else {}
        digest = hashlib.sha256()
        try:
            with tempfile.TemporaryFile() as spool:
                url = f"{node}/collections/{collection}/snapshots/{described.name}"
                with httpx.stream("GET", url, headers=headers, timeout=self.timeout_s) as response:
                    response.raise_for_status()
                    for chunk in response.iter_bytes(1024 * 1024):
                        digest.update(chunk)
                        spool.write(chunk)
                size = spool.tell()
                spool.seek(0)
                self.s3.upload_fileobj(spool, self.bucket, key, ExtraArgs=self._extra_args(), Config=self.transfer)
        finally:
            # The node's disk is not a backup location; free it whether or not the upload worked.
            client.delete_snapshot(collection_name=collection, snapshot_name=described.name, wait=True)
        sha = digest.hexdigest()
        if described.checksum and described.checksum != sha:
            raise SnapshotError(f"{node}: snapshot {described.name} checksum mismatch after download")
        log.info("uploaded %s (%d bytes) from %s", key, size, node)
        return NodeSnapshot(node=node, snapshot=described.name, key=key, size=size, sha256=sha)

    # --- list / prune ---------------------------------------------------------------------------------------------
    def runs(self) -> list[Manifest]:
        manifests = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{self.alias}/"):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/manifest.json"):
                    body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    manifests.append(Manifest.from_dict(json.loads(body)))
        return sorted(manifests, key=lambda m: m.stamp, reverse=True)

    def prune(self, *, now: datetime | None = None) -> list[str]:
        """Delete runs beyond `keep_last` or older than `max_age_days`; the newest run always stays."""
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(days=self.max_age_days)
        manifests = self.runs()
        doomed = [
            m
            for position, m in enumerate(manifests)
            if position > 0 and (position >= self.keep_last or datetime.fromisoformat(m.created_at) < cutoff)
        ]
        for manifest in doomed:
            prefix = self._run_prefix(manifest.stamp)
            keys = [
                {"Key": obj["Key"]}
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
                for obj in page.get("Contents", [])
            ]
            for start in range(0, len(keys), 1000):
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000]})
        return [m.stamp for m in doomed]

    # --- restore --------------------------------------------------------------------------------------------------
    def restore(
        self, stamp: str | None = None, *, collection: str | None = None, switch_alias: bool = True
    ) -> Manifest:
        manifests = self.runs()
        if not manifests:
            raise SnapshotError(f"no snapshots under s3://{self.bucket}/{self.prefix}{self.alias}/")
        chosen = manifests[0] if stamp is None else next((m for m in manifests if m.stamp == stamp), None)
        if chosen is None:
            raise SnapshotError(f"snapshot run {stamp!r} not found; available: {[m.stamp for m in manifests]}")
        if len(chosen.nodes) != len(self.nodes):
            raise SnapshotError(
                f"snapshot run {chosen.stamp} has {len(chosen.nodes)} node snapshots but {len(self.nodes)} nodes "
                "are configured; restore needs the same cluster size"
            )
        target = collection or chosen.collection
        for node, snap in zip(self.nodes, chosen.nodes, strict=True):
            url = self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": snap.key}, ExpiresIn=self.presign_ttl_s
            )
            started = time.monotonic()
            self._client(node).recover_snapshot(
                collection_name=target,
                location=url,
                checksum=snap.sha256,
                priority=models.SnapshotPriority.SNAPSHOT,
                wait=True,
            )
            log.info("restored %s on %s in %.1fs", snap.key, node, time.monotonic() - started)
        if switch_alias and target != self.alias:
            ops: list[Any] = [
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)),
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name=target, alias_name=self.alias)
                ),
            ]
            client = self._client(self.nodes[0])
            if self.alias not in {a.alias_name for a in client.get_aliases().aliases}:
                ops = ops[1:]
            client.update_collection_aliases(change_aliases_operations=ops)
        return chosen


def manager_from_settings(settings: Any) -> SnapshotManager:
    import boto3

    # S3_AUTH=iam: never pass keys, so boto3's default chain signs with the pod's web identity (IRSA).
    static = settings.s3_auth == "static"
    key_id = settings.aws_access_key_id if static else None
    secret = settings.aws_secret_access_key if static else None
    s3 = boto3.client(
        "s3",
        endpoint_url=settings.s3_snapshots_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=key_id.get_secret_value() if key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    )
    return SnapshotManager(
        nodes=settings.nodes,
        api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        alias=settings.qdrant_collection,
        s3=s3,
        bucket=settings.s3_bucket_snapshots,
        prefix=settings.snapshot_prefix,
        sse=settings.snapshot_sse,
        kms_key_id=settings.snapshot_kms_key_id,
        keep_last=settings.snapshot_keep_last,
        max_age_days=settings.snapshot_max_age_days,
        part_size_mb=settings.snapshot_part_size_mb,
        presign_ttl_s=settings.snapshot_presign_ttl_s,
    )


def main(argv: list[str] | None = None) -> int:
    from app.ops.audit_trail import command_audit, run_audited
    from app.ops.settings import get_ops_settings

    parser = argparse.ArgumentParser(prog="python -m app.ops.snapshots", description="Qdrant snapshots <-> S3")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", help="snapshot every node, upload, then prune by retention")
    sub.add_parser("list")
    sub.add_parser("prune")
    restore = sub.add_parser("restore")
    restore.add_argument("--stamp", help="run to restore (default: newest)")
    restore.add_argument("--collection", help="restore into this collection name (default: the original)")
    restore.add_argument("--no-switch-alias", action="store_true")
    args = parser.parse_args(argv)
    settings = get_ops_settings()
    # stdout carries the JSON result; the log lines go to stderr.
    configure_logging(settings.log_level, json=settings.log_json, stream=sys.stderr)
    manager = manager_from_settings(settings)

    def work(outcome: dict[str, Any]) -> int:
        try:
            if args.command == "create":
                manifest = manager.create()
                result: Any = {"created": asdict(manifest), "pruned": manager.prune()}
                outcome.update(stamp=manifest.stamp, points=manifest.points, pruned=result["pruned"])
            elif args.command == "list":
                result = [asdict(m) for m in manager.runs()]
                outcome["runs"] = len(result)
            elif args.command == "prune":
                result = {"pruned": manager.prune()}
                outcome.update(result)
            else:
                chosen = manager.restore(args.stamp, collection=args.collection, switch_alias=not args.no_switch_alias)
                result = {"restored": asdict(chosen)}
                outcome.update(
                    stamp=chosen.stamp,
                    collection=args.collection or chosen.collection,
                    switched_alias=not args.no_switch_alias,
                )
        except SnapshotError as exc:
            outcome["error"] = str(exc)
            print(json.dumps({"error": str(exc)}), file=sys.stderr)
            return 2
        print(json.dumps(result, indent=2))
        return 0

    details = {"stamp": args.stamp} if args.command == "restore" and args.stamp else {}
    action = f"ops.snapshots.{args.command}"
    audit = command_audit(settings, action=action, target=settings.qdrant_collection, **details)
    return run_audited(audit, work)


if __name__ == "__main__":
    raise SystemExit(main())
