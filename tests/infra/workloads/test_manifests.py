"""The rendered objects are schema-valid (kubernetes-validate, strict) and pass checkov with .checkov.yaml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.engine.manifests import build_manifests, write_manifests
from stacks.engine.offline import Record

ROOT = Path(__file__).resolve().parents[3]
CRD_KINDS = {"SecretStore", "ExternalSecret", "TargetGroupBinding", "ClusterImagePolicy"}


def _kv() -> str:
    exe = Path(sys.executable).parent / "kubernetes-validate"
    assert exe.exists(), "kubernetes-validate is not installed (infra extra)"
    return str(exe)


@pytest.fixture(scope="module")
def prod_dir(wl_records: dict[str, Record], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("manifests-prod")
    write_manifests(build_manifests(wl_records["prod"]).manifests, out)
    return out


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_object_is_schema_valid(wl_records: dict[str, Record], stack: str) -> None:
    report = build_manifests(wl_records[stack])
    assert report.valid, report.errors
    assert len(report.manifests) > 30
    assert {u["kind"] for u in report.unchecked} <= CRD_KINDS


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_manifests_are_clean_yaml(prod_dir: Path) -> None:
    for path in prod_dir.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            leaves = _leaves(doc)
            assert None not in leaves, f"{path.name}: nulls"
            assert not any(isinstance(v, float) for v in leaves), f"{path.name}: floats"


def test_kubernetes_validate_cli_strict(prod_dir: Path, wl_records: dict[str, Record]) -> None:
    version = f"{wl_records['prod'].config.cluster.kubernetes_version}.0"
    files = sorted(str(p) for p in prod_dir.glob("*.yaml") if p.name != "all.yaml")
    res = subprocess.run(
        [_kv(), "--strict", "--quiet", "-k", version, *files], capture_output=True, text=True, timeout=120
    )
    errors = [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("ERROR")]
    assert res.returncode == 0 and not errors, errors or res.stdout + res.stderr


def test_kubernetes_validate_catches_a_bad_object(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"replicas": "three", "selector": {}, "template": {}, "bogus": 1},
            }
        )
    )
    res = subprocess.run([_kv(), "--strict", "-k", "1.33.0", str(bad)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0


def _checkov(directory: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("bash")
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "checkov.sh"), "--dir", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.timeout(900)  # the first run creates .venv-checkov
def test_checkov_passes_prod(prod_dir: Path) -> None:
    res = _checkov(prod_dir)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Failed checks: 0" in res.stdout
    assert "Passed checks: " in res.stdout and "Passed checks: 0," not in res.stdout


@pytest.mark.timeout(900)
def test_checkov_catches_an_unhardened_deployment(prod_dir: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((prod_dir / "deployment-visionrag-api.yaml").read_text())
    c = doc["spec"]["template"]["spec"]["containers"][0]
    del c["resources"]["limits"]
    c["securityContext"]["allowPrivilegeEscalation"] = True
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(doc))
    res = _checkov(tmp_path)
    assert res.returncode != 0
    for check in ("CKV_K8S_11", "CKV_K8S_13", "CKV_K8S_20"):
        assert check in res.stdout, check
