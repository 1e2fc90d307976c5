"""Every container and pod the stack runs is hardened (issue 4, "Every container")."""

from __future__ import annotations

import pytest

from infra.workloads.container import RUN_AS_GID, RUN_AS_UID
from stacks.engine.offline import Record
from tests.infra.workloads.graph import CRONJOB, containers, workloads

STACKS = ("dev", "staging", "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_has_requests_and_limits(wl_records: dict[str, Record], stack: str) -> None:
    seen = 0
    for r, pod in workloads(wl_records[stack]):
        for c in containers(pod):
            seen += 1
            res = c["resources"]
            for kind in ("requests", "limits"):
                for q in ("cpu", "memory"):
                    assert res.get(kind, {}).get(q), f"{r.name}/{c['name']}: no {kind}.{q}"
    assert seen >= 6  # api, worker, embedder (+ model-sync), qdrant, snapshots


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_security_context(wl_records: dict[str, Record], stack: str) -> None:
    for r, pod in workloads(wl_records[stack]):
        for c in containers(pod):
            sc = c["securityContext"]
            where = f"{r.name}/{c['name']}"
            assert sc["runAsNonRoot"] is True, where
            assert int(sc["runAsUser"]) == RUN_AS_UID and int(sc["runAsUser"]) >= 10000, where
            assert int(sc["runAsGroup"]) == RUN_AS_GID, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["privileged"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            image = c["image"]
            assert not image.endswith(":latest") and ("@sha256:" in image or ":" in image.rsplit("/", 1)[-1]), where
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), f"{where}: /tmp must be an emptyDir"


@pytest.mark.parametrize("stack", STACKS)
def test_pods_have_no_host_access_and_no_token(wl_records: dict[str, Record], stack: str) -> None:
    for r, pod in workloads(wl_records[stack]):
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False, r.name
        assert spec["serviceAccountName"], r.name
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert spec.get(flag) is False, f"{r.name}: {flag}"
        for v in spec["volumes"]:
            assert "hostPath" not in v, f"{r.name}: hostPath volume {v['name']}"
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("stack", STACKS)
def test_long_running_containers_are_probed(wl_records: dict[str, Record], stack: str) -> None:
    for r, pod in workloads(wl_records[stack]):
        if r.type == CRONJOB:
            continue
        for c in pod["spec"]["containers"]:
            assert c.get("livenessProbe") and c.get("readinessProbe"), f"{r.name}/{c['name']}"


def test_slow_starters_have_startup_probes(wl_records: dict[str, Record]) -> None:
    for _, pod in workloads(wl_records["prod"]):
        for c in pod["spec"]["containers"]:
            if c["name"] in ("embedder", "qdrant"):
                p = c["startupProbe"]
                budget = int(p["periodSeconds"]) * int(p["failureThreshold"])
                assert budget >= 600, f"{c['name']}: startup budget {budget}s is too short for a model/WAL load"


def test_secrets_are_files_not_env(wl_records: dict[str, Record]) -> None:
    for r, pod in workloads(wl_records["prod"]):
        for c in containers(pod):
            for e in c.get("env") or []:
                assert "valueFrom" not in e, f"{r.name}/{c['name']}: env {e['name']} from a Secret"
                # A KMS key id is an ARN, not a secret.
                assert "KEY" not in e["name"] or e["name"].endswith("_KMS_KEY_ID"), e["name"]
        projected = [v for v in pod["spec"]["volumes"] if "projected" in v]
        for v in projected:
            assert int(v["projected"]["defaultMode"]) == 0o400
