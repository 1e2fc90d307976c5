"""The embedder's init-container program, run for real against an S3 API (moto)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from infra.workloads.model_sync import SCRIPT

RUNNER = textwrap.dedent(
    """
    import sys
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        for key in sys.argv[1:]:
            s3.put_object(Bucket="models", Key=key, Body=b"w:" + key.encode())
        exec(compile(SCRIPT, "model_sync", "exec"))
    """
)


def _run(tmp_path: Path, keys: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODEL_BUCKET": "models",
        "MODEL_PREFIX": "vidore/colpali-v1.3-hf",
        "MODEL_DIR": str(tmp_path / "models"),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    code = f"SCRIPT = {SCRIPT!r}\n" + RUNNER
    return subprocess.run([sys.executable, "-c", code, *keys], env=env, capture_output=True, text=True, timeout=60)


def test_copies_the_model_prefix_only(tmp_path: Path) -> None:
    keys = [
        "vidore/colpali-v1.3-hf/config.json",
        "vidore/colpali-v1.3-hf/shards/model-00001.safetensors",
        "vidore/other-model/config.json",
    ]
    res = _run(tmp_path, keys)
    assert res.returncode == 0, res.stderr
    root = tmp_path / "models"
    assert (root / "config.json").read_bytes() == b"w:vidore/colpali-v1.3-hf/config.json"
    assert (root / "shards" / "model-00001.safetensors").exists()
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["config.json", "model-00001.safetensors"]
    assert "synced 2 files" in res.stdout


def test_fails_when_the_model_is_missing(tmp_path: Path) -> None:
    res = _run(tmp_path, ["vidore/other-model/config.json"])
    assert res.returncode != 0
    assert "no model files under s3://models/vidore/colpali-v1.3-hf/" in res.stderr


def test_refuses_keys_escaping_the_model_directory(tmp_path: Path) -> None:
    res = _run(tmp_path, ["vidore/colpali-v1.3-hf/../../escape.txt"])
    assert res.returncode != 0
    assert "refusing object key outside the model directory" in res.stderr
    assert not (tmp_path / "escape.txt").exists()
