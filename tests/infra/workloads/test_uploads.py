"""The api pod's /tmp holds every upload it may spool at once (infra/workloads/uploads.py), in every stack.

Read back from the recorded Deployments: the api's /tmp emptyDir sizeLimit is at least GUNICORN_WORKERS x
UPLOAD_MAX_CONCURRENT x MAX_UPLOAD_FILES x MAX_UPLOAD_MB of the very env the pod gets (the app's defaults where the
pod sets none), and the container requests at least that much ephemeral storage. A pod that writes past its
emptyDir's sizeLimit is evicted with every in-flight request, so the old 256Mi (< 2000 MiB) fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.api.settings import Settings
from infra.workloads import uploads
from infra.workloads.container import TMP_SIZE
from policies.cost_estimator import gib
from stacks.engine.offline import Record
from tests.infra.workloads.graph import DEPLOYMENT, containers, name, pod_template

STACKS = ("dev", "staging", "prod")
# Setting -> the env name the api reads it from (app/api/settings.py).
LIMITS = {
    "gunicorn_workers": "GUNICORN_WORKERS",
    "upload_max_concurrent": "UPLOAD_MAX_CONCURRENT",
    "max_upload_files": "MAX_UPLOAD_FILES",
    "max_upload_mb": "MAX_UPLOAD_MB",
}


def mib(quantity: Any) -> float:
    return gib(quantity) * 1024


def _api_pods(record: Record) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod template) of every Deployment running the api image's process: the api and its canary."""
    pods = [
        (name(r), pod_template(r))
        for r in record.of_type(DEPLOYMENT)
        if any(c["name"] == "api" for c in containers(pod_template(r)))
    ]
    assert "api" in [n for n, _ in pods]
    return pods


def _api_container(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "api")


def _tmp_limit(pod: dict[str, Any]) -> Any:
    (tmp,) = [v for v in pod["spec"]["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"].get("medium") is None, "a tmpfs /tmp would spool uploads into the memory limit"
    return tmp["emptyDir"]["sizeLimit"]


def _spool_mib(container: dict[str, Any]) -> int:
    """What the pod's own settings let it spool: every worker's every slot holding a full upload."""
    env = {e["name"]: e["value"] for e in container.get("env") or []}
    total = 1
    for field, env_name in LIMITS.items():
        total *= int(env.get(env_name, Settings.model_fields[field].default))
    return total


@pytest.mark.parametrize("stack", STACKS)
def test_the_api_tmp_holds_every_upload_its_workers_may_spool(records: dict[str, Record], stack: str) -> None:
    for workload, pod in _api_pods(records[stack]):
        container = _api_container(pod)
        need = _spool_mib(container)
        limit = _tmp_limit(pod)
        assert mib(limit) >= need, f"{stack}/{workload}: /tmp sizeLimit {limit} < {need} MiB of uploads"
        request = container["resources"]["requests"].get("ephemeral-storage")
        assert request is not None, f"{stack}/{workload}: no ephemeral-storage request for its /tmp"
        assert mib(request) >= mib(limit), f"{stack}/{workload}: requests {request}, its /tmp may hold {limit}"


@pytest.mark.parametrize("stack", STACKS)
def test_the_api_pods_get_the_upload_limits_in_every_stack(records: dict[str, Record], stack: str) -> None:
    for workload, pod in _api_pods(records[stack]):
        env = {e["name"]: e["value"] for e in _api_container(pod).get("env") or []}
        assert {k: env.get(k) for k in uploads.upload_env()} == uploads.upload_env(), f"{stack}/{workload}"


def test_the_old_tmp_size_fails_the_guard() -> None:
    # What the api had before: the shared 256Mi. The guard above compares against exactly this arithmetic.
    assert mib(TMP_SIZE) < uploads.upload_spool_mib()


def test_other_pods_keep_the_small_tmp(records: dict[str, Record]) -> None:
    api_names = {n for n, _ in _api_pods(records["prod"])}
    others = [
        (name(r), _tmp_limit(pod_template(r)))
        for r in records["prod"].of_type(DEPLOYMENT)
        if name(r) not in api_names and any(v["name"] == "tmp" for v in pod_template(r)["spec"]["volumes"])
    ]
    assert others and all(limit == TMP_SIZE for _, limit in others), others


def test_tmp_size_arithmetic_and_bounds() -> None:
    assert uploads.upload_spool_mib(workers=3, concurrent=2, files=10, mb=50) == 3000
    assert uploads.api_tmp_size(workers=1, concurrent=1, files=1, mb=1) == f"{1 + uploads.TMP_HEADROOM_MIB}Mi"
    assert mib(uploads.api_ephemeral_storage_request()) > mib(uploads.api_tmp_size())
    with pytest.raises(ValueError, match="concurrent"):
        uploads.upload_spool_mib(concurrent=0)
