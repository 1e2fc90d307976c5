"""`python -m app.ops.models` against a real S3 (SeaweedFS): what it uploads is what the embedder's init container
(infra/workloads/model_sync.py, run here as the pod runs it) reads back into the model directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from app.dev_servers import SeaweedS3
from app.ops.models import ModelSourceError, check, main, resolve_model_dir, upload
from infra.workloads.model_sync import SCRIPT

MODEL = "vidore/colpali-v1.3-hf"
FILES = {
    "config.json": b'{"model_type": "colpali"}',
    "model-00001-of-00002.safetensors": os.urandom(300_000),
    "model-00002-of-00002.safetensors": os.urandom(1000),
    "tokenizer/tokenizer.json": b'{"version": "1.0"}',
}


def _hf_cache(root: Path, commit: str = "0123abcd") -> Path:
    """A hub cache the way huggingface_hub writes it: snapshots/<commit>/<file> -> ../../blobs/<hash>."""
    repo = root / ("models--" + MODEL.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    for i, (rel, data) in enumerate(FILES.items()):
        blob = repo / "blobs" / f"blob{i}"
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "snapshots" / "stale").mkdir()  # another revision: must not be picked
    return root


def _client(s3: SeaweedS3):
    return boto3.client(
        "s3",
        endpoint_url=s3.url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
    )


@pytest.fixture
def models_bucket(seaweed_s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed_s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed_s3.secret_key)
    return seaweed_s3.make_bucket(f"vr-models-{uuid.uuid4().hex[:12]}")


def _model_sync(s3: SeaweedS3, bucket: str, target: Path) -> subprocess.CompletedProcess[str]:
    """The init container's program, with the env the Deployment gives it (plus the test endpoint)."""
    env = {
        **os.environ,
        "MODEL_BUCKET": bucket,
        "MODEL_PREFIX": MODEL,
        "MODEL_DIR": str(target),
        "AWS_REGION": s3.region,
        "AWS_ENDPOINT_URL": s3.url,  # boto3 honours it; in the cluster the variable is unset (AWS S3)
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False)


def test_uploaded_cache_is_what_the_init_container_syncs(
    seaweed_s3: SeaweedS3, models_bucket: str, tmp_path: Path
) -> None:
    s3 = _client(seaweed_s3)
    empty = _model_sync(seaweed_s3, models_bucket, tmp_path / "before")
    assert empty.returncode != 0 and "no model files" in empty.stderr  # the first-deploy failure mode
    assert check(s3, bucket=models_bucket, model=MODEL) != []

    model_dir = resolve_model_dir(_hf_cache(tmp_path / "hub"), MODEL)
    report = upload(s3, bucket=models_bucket, model=MODEL, model_dir=model_dir)
    assert sorted(report.uploaded) == sorted(f"{MODEL}/{rel}" for rel in FILES)

    synced = tmp_path / "models" / MODEL
    result = _model_sync(seaweed_s3, models_bucket, synced)
    assert result.returncode == 0, result.stderr
    assert {p.relative_to(synced).as_posix(): p.read_bytes() for p in synced.rglob("*") if p.is_file()} == FILES
    assert check(s3, bucket=models_bucket, model=MODEL) == []


def test_upload_is_idempotent_and_replaces_changed_files(
    seaweed_s3: SeaweedS3, models_bucket: str, tmp_path: Path
) -> None:
    s3 = _client(seaweed_s3)
    model_dir = tmp_path / "plain"
    for rel, data in FILES.items():
        (model_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / rel).write_bytes(data)
    upload(s3, bucket=models_bucket, model=MODEL, model_dir=model_dir)
    again = upload(s3, bucket=models_bucket, model=MODEL, model_dir=model_dir)
    assert again.uploaded == [] and len(again.skipped) == len(FILES)
    (model_dir / "config.json").write_bytes(b'{"model_type": "colpali", "v": 2}')
    third = upload(s3, bucket=models_bucket, model=MODEL, model_dir=model_dir)
    assert third.uploaded == [f"{MODEL}/config.json"]
    body = s3.get_object(Bucket=models_bucket, Key=f"{MODEL}/config.json")["Body"].read()
    assert body == b'{"model_type": "colpali", "v": 2}'


def _events(s3: SeaweedS3, bucket: str) -> list[dict]:
    return [json.loads(s3.read(bucket, key)) for key in sorted(s3.object_names(bucket, "audit/"))]


def test_cli_upload_then_check_each_audited(
    seaweed_s3: SeaweedS3, models_bucket: str, s3_buckets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_ACTOR", "ci:test-runner")
    common = ["--bucket", models_bucket, "--model", MODEL, "--endpoint-url", seaweed_s3.url]
    common += ["--region", seaweed_s3.region, "--audit-bucket", s3_buckets.audit]
    assert main(["check", *common]) == 1
    hub = _hf_cache(tmp_path / "hub")
    assert main(["upload", *common, str(hub / ("models--" + MODEL.replace("/", "--")))]) == 0
    assert main(["check", *common]) == 0
    assert main(["upload", *common, str(tmp_path / "nowhere")]) == 2
    events = _events(seaweed_s3, s3_buckets.audit)
    pairs = [(e["action"], e["outcome"]) for e in events]
    assert pairs.count(("ops.models.check", "started")) == 2 and pairs.count(("ops.models.upload", "started")) == 2
    assert ("ops.models.check", "failed") in pairs and ("ops.models.check", "succeeded") in pairs
    uploaded = [e for e in events if e["action"] == "ops.models.upload" and e["outcome"] == "succeeded"]
    assert len(uploaded) == 1 and uploaded[0]["details"]["uploaded"] == len(FILES)
    assert {e["actor"] for e in events} == {"ci:test-runner"}
    assert {e["target"] for e in events} == {f"s3://{models_bucket}/{MODEL}/"}


def test_cli_refuses_to_act_without_an_audit_trail(
    seaweed_s3: SeaweedS3, models_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("S3_BUCKET_AUDIT", raising=False)
    common = ["--bucket", models_bucket, "--model", MODEL, "--endpoint-url", seaweed_s3.url]
    common += ["--region", seaweed_s3.region]
    source = str(_hf_cache(tmp_path / "hub") / ("models--" + MODEL.replace("/", "--")))
    with pytest.raises(SystemExit) as exited:
        main(["upload", *common, source])
    assert exited.value.code == 2
    # An audit bucket that cannot be written (SeaweedFS creates missing buckets on write, so: a name S3 refuses):
    # exit 3, and nothing was uploaded.
    assert main(["upload", *common, "--audit-bucket", "vr-audit:unwritable", source]) == 3
    assert seaweed_s3.object_names(models_bucket) == []


def test_sources_that_are_not_a_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"holds no config\.json"):
        resolve_model_dir(tmp_path, MODEL)
    hub = _hf_cache(tmp_path / "hub")
    with pytest.raises(ModelSourceError, match="no snapshot for revision 'v2'"):
        resolve_model_dir(hub, MODEL, revision="v2")
    with pytest.raises(ModelSourceError, match="incomplete"):  # a revision with nothing downloaded
        resolve_model_dir(hub, MODEL, revision="stale")
