"""Model weights into the models bucket: `python -m app.ops.models upload|check`.

The embedder never downloads from the Hugging Face Hub: its init container (infra/workloads/model_sync.py)
copies every object under `s3://<models bucket>/<model>/` into `/models/<model>/` and the server loads that
directory offline. This command writes exactly that layout: each file of the model directory at
`<model>/<path relative to the model directory>` (so `<model>/config.json`, `<model>/model.safetensors`, ...).

The source is either a plain model directory (the files `from_pretrained` reads) or a Hugging Face cache: the
hub cache root (`~/.cache/huggingface/hub`), or one repository's folder in it (`models--org--name`). From a cache
the snapshot of `--revision` (default `main`, via `refs/<revision>`) is uploaded, following the snapshot's
symlinks into `blobs/`.

Uploads are idempotent: each object carries its sha256 in its metadata and an unchanged file is skipped.
Encryption is the bucket's default (the project's KMS key; the bucket policy refuses anything weaker), or
`--kms-key-id` to name the key explicitly. Credentials and region come from the usual AWS chain;
`--endpoint-url` points at another S3 (tests, SeaweedFS).

    python -m app.ops.models upload --bucket "$(pulumi stack output bucketNames --stack dev | jq -r .models)" \\
        --model vidore/colpali-v1.3-hf ~/.cache/huggingface/hub
    python -m app.ops.models check --bucket ... --model vidore/colpali-v1.3-hf

Both are audited (app/ops/audit_trail.py) in the stack's audit bucket: `--audit-bucket` or S3_BUCKET_AUDIT
(stack output bucketNames.audit), through the same S3 endpoint; the actor is AUDIT_ACTOR, CI's run or the login.

Exit codes: 0 done / weights present, 1 weights missing (check), 2 usage or source error, 3 audit not written.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SHA256_META = "sha256"
# What every transformers model directory holds; without it `from_pretrained` cannot start.
REQUIRED_FILE = "config.json"
_HASH_CHUNK = 1024 * 1024


class ModelSourceError(ValueError):
    """The source is not a model directory or a Hugging Face cache holding the model."""


@dataclass(frozen=True)
class ModelFile:
    path: Path  # readable file (symlinks resolved)
    relative: str  # POSIX path inside the model directory


def _cache_repo(source: Path, model: str) -> Path | None:
    """The `models--org--name` folder for `model` when `source` is a hub cache root or that folder itself."""
    folder = "models--" + model.replace("/", "--")
    if source.name == folder and (source / "snapshots").is_dir():
        return source
    if (source / folder / "snapshots").is_dir():
        return source / folder
    return None


def resolve_model_dir(source: Path, model: str, revision: str = "main") -> Path:
    """The directory whose files are the model, from a plain model directory or a Hugging Face cache."""
    if not source.is_dir():
        raise ModelSourceError(f"source {source} is not a directory")
    repo = _cache_repo(source, model)
    if repo is None:
        if not (source / REQUIRED_FILE).is_file():
            raise ModelSourceError(
                f"source {source} holds no {REQUIRED_FILE} and no Hugging Face cache of {model} "
                f"(models--{model.replace('/', '--')}/snapshots)"
            )
        return source
    ref = repo / "refs" / revision
    commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else revision
    snapshot = repo / "snapshots" / commit
    if not snapshot.is_dir():
        available = sorted(p.name for p in (repo / "snapshots").iterdir())
        raise ModelSourceError(f"{repo}: no snapshot for revision {revision!r} (snapshots: {available})")
    if not (snapshot / REQUIRED_FILE).exists():
        raise ModelSourceError(f"{snapshot}: no {REQUIRED_FILE}; the cached download is incomplete")
    return snapshot


def model_files(model_dir: Path) -> list[ModelFile]:
    """Every file under the model directory (symlinks followed, e.g. into a cache's blobs/), sorted."""
    found: list[ModelFile] = []
    for root, dirs, files in os.walk(model_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git, .cache: not part of the model
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if not path.resolve().is_file():
                raise ModelSourceError(f"{path} is a dangling link: the cached download is incomplete")
            found.append(ModelFile(path=path.resolve(), relative=path.relative_to(model_dir).as_posix()))
    if not found:
        raise ModelSourceError(f"{model_dir} holds no files")
    return found


def object_key(model: str, relative: str) -> str:
    """The key model_sync reads back: `<model>/<relative>` (model_sync strips `<model>/` and joins the rest)."""
    return f"{model.strip('/')}/{relative}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _s3(region: str | None, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url)


def _existing_sha(s3: Any, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return str(head.get("Metadata", {}).get(SHA256_META) or "") or None


@dataclass
class UploadReport:
    uploaded: list[str]
    skipped: list[str]


def upload(
    s3: Any, *, bucket: str, model: str, model_dir: Path, kms_key_id: str | None = None, dry_run: bool = False
) -> UploadReport:
    """Upload the model directory to `s3://bucket/<model>/`; unchanged objects (same sha256) are skipped."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024)
    report = UploadReport(uploaded=[], skipped=[])
    for f in model_files(model_dir):
        key = object_key(model, f.relative)
        digest = _sha256(f.path)
        if _existing_sha(s3, bucket, key) == digest:
            report.skipped.append(key)
            continue
        extra: dict[str, Any] = {"Metadata": {SHA256_META: digest}}
        if kms_key_id:
            extra |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
        if not dry_run:
            s3.upload_file(str(f.path), bucket, key, ExtraArgs=extra, Config=config)
        log.info(
            "%s s3://%s/%s (%d bytes)", "would upload" if dry_run else "uploaded", bucket, key, f.path.stat().st_size
        )
        report.uploaded.append(key)
    return report


def stored_keys(s3: Any, bucket: str, model: str) -> Iterator[str]:
    prefix = model.strip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield str(obj["Key"])


def check(s3: Any, *, bucket: str, model: str) -> list[str]:
    """What keeps the embedder from starting with the bucket as it is; empty when the weights are present."""
    keys = set(stored_keys(s3, bucket, model))
    if not keys:
        return [f"no objects under s3://{bucket}/{model.strip('/')}/ (the embedder's init container exits 1)"]
    if object_key(model, REQUIRED_FILE) not in keys:
        return [f"s3://{bucket}/{object_key(model, REQUIRED_FILE)} is missing: not a model directory layout"]
    return []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.ops.models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("upload", "check"):
        p = sub.add_parser(name)
        p.add_argument("--bucket", required=True, help="the stack's models bucket (stack output bucketNames.models)")
        p.add_argument("--model", required=True, help="the stack's workloads.embedderModel, e.g. org/name")
        p.add_argument("--region", default=None)
        p.add_argument("--endpoint-url", default=None, help="another S3 endpoint (tests, SeaweedFS)")
        p.add_argument(
            "--audit-bucket",
            default=os.environ.get("S3_BUCKET_AUDIT"),
            help="the stack's audit bucket (default: $S3_BUCKET_AUDIT); required",
        )
        if name == "upload":
            p.add_argument("source", type=Path, help="model directory or Hugging Face cache (root or repo folder)")
            p.add_argument("--revision", default="main", help="cache revision (a ref name or commit)")
            p.add_argument("--kms-key-id", default=None, help="request SSE-KMS with this key (default: bucket's)")
            p.add_argument("--dry-run", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from app.core.audit import AuditLog, audited, process_actor
    from app.ops.audit_trail import Boto3Writer, run_audited

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.audit_bucket:
        parser.error("--audit-bucket (or S3_BUCKET_AUDIT) is required: every upload/check is audited")
    s3 = _s3(args.region, args.endpoint_url)
    audit = audited(
        AuditLog(Boto3Writer(s3, args.audit_bucket)),
        actor=process_actor(),
        action=f"ops.models.{args.command}",
        target=f"s3://{args.bucket}/{args.model.strip('/')}/",
    )

    def work(outcome: dict[str, Any]) -> int:
        if args.command == "check":
            problems = check(s3, bucket=args.bucket, model=args.model)
            for p in problems:
                print(p, file=sys.stderr)
            if not problems:
                print(f"model {args.model} present in s3://{args.bucket}/")
            outcome["problems"] = problems
            return 1 if problems else 0
        try:
            model_dir = resolve_model_dir(args.source.expanduser(), args.model, args.revision)
            report = upload(
                s3,
                bucket=args.bucket,
                model=args.model,
                model_dir=model_dir,
                kms_key_id=args.kms_key_id,
                dry_run=args.dry_run,
            )
        except ModelSourceError as err:
            outcome["error"] = str(err)
            print(f"error: {err}", file=sys.stderr)
            return 2
        outcome.update(uploaded=len(report.uploaded), unchanged=len(report.skipped), dry_run=args.dry_run)
        print(f"{len(report.uploaded)} uploaded, {len(report.skipped)} unchanged, from {model_dir}")
        return 0

    return run_audited(audit, work)


if __name__ == "__main__":
    sys.exit(main())
