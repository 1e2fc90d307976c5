"""PDBs for every multi-replica workload, zone spread, HPAs, per-tier replicas."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.engine.offline import Record
from tests.infra.workloads.graph import CRONJOB, HPA, PDB, by_name, name, workloads


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_multi_replica_workload_has_a_matching_pdb(wl_records: dict[str, Record], stack: str) -> None:
    record = wl_records[stack]
    pdbs = {name(p): p.inputs["spec"] for p in record.of_type(PDB)}
    hpas = {name(h): h.inputs["spec"] for h in record.of_type(HPA)}
    for r, pod in workloads(record):
        if r.type == CRONJOB:
            continue
        replicas = int(r.inputs["spec"]["replicas"])
        max_replicas = int(hpas[name(r)]["maxReplicas"]) if name(r) in hpas else replicas
        if max(replicas, max_replicas) > 1:
            pdb = pdbs.get(name(r))
            assert pdb is not None, f"{stack}: {name(r)} runs {replicas}-{max_replicas} replicas without a PDB"
            selector = pdb["selector"]["matchLabels"]
            assert selector.items() <= pod["metadata"]["labels"].items(), f"{name(r)}: PDB selects other pods"
            assert int(pdb["maxUnavailable"]) == 1


def test_tier_replicas(wl_records: dict[str, Record]) -> None:
    for stack, api, qdrant in (("dev", 1, 1), ("staging", 2, 1), ("prod", 3, 3)):
        record = wl_records[stack]
        assert int(by_name(record, "kubernetes:apps/v1:Deployment", "api").inputs["spec"]["replicas"]) == api
        assert int(by_name(record, "kubernetes:apps/v1:StatefulSet", "qdrant").inputs["spec"]["replicas"]) == qdrant


def test_pods_spread_across_zones(wl_records: dict[str, Record]) -> None:
    for r, pod in workloads(wl_records["prod"]):
        if r.type == CRONJOB:
            continue
        keys = {c["topologyKey"] for c in pod["spec"]["topologySpreadConstraints"]}
        assert "topology.kubernetes.io/zone" in keys, name(r)


def test_prod_qdrant_is_a_cluster_with_hard_anti_affinity(wl_records: dict[str, Record]) -> None:
    sts = by_name(wl_records["prod"], "kubernetes:apps/v1:StatefulSet", "qdrant").inputs["spec"]
    pod = sts["template"]["spec"]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"] == "true"
    assert "--bootstrap" in pod["containers"][0]["args"][0]
    dev = by_name(wl_records["dev"], "kubernetes:apps/v1:StatefulSet", "qdrant").inputs["spec"]["template"]["spec"]
    assert {e["name"]: e["value"] for e in dev["containers"][0]["env"]}["QDRANT__CLUSTER__ENABLED"] == "false"
    assert "affinity" not in dev or not dev.get("affinity")


def test_qdrant_volumes_and_api_key(wl_records: dict[str, Record]) -> None:
    sts = by_name(wl_records["prod"], "kubernetes:apps/v1:StatefulSet", "qdrant").inputs["spec"]
    claims = {c["metadata"]["name"]: c["spec"] for c in sts["volumeClaimTemplates"]}
    assert set(claims) == {"storage", "snapshots"}
    for c in claims.values():
        assert c["storageClassName"] == "gp3-encrypted"
    assert claims["storage"]["resources"]["requests"]["storage"] == "200Gi"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    c = sts["template"]["spec"]["containers"][0]
    assert 'export QDRANT__SERVICE__API_KEY="$(cat /var/run/secrets/visionrag/qdrant_api_key)"' in c["args"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_hpas(wl_records: dict[str, Record]) -> None:
    hpas = {name(h): h.inputs["spec"] for h in wl_records["prod"].of_type(HPA)}
    assert set(hpas) == {"api", "worker", "embedder", "frontend"}
    api = hpas["api"]
    assert (int(api["minReplicas"]), int(api["maxReplicas"])) == (3, 10)
    metric = api["metrics"][0]["resource"]
    assert metric["name"] == "cpu" and metric["target"]["type"] == "Utilization"
    assert int(hpas["embedder"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]) == 600
    assert (int(hpas["frontend"]["minReplicas"]), int(hpas["frontend"]["maxReplicas"])) == (3, 6)
    # dev: maxReplicas 1 on the embedder and none on api -> only the frontend (1..2) is autoscaled
    assert {name(h) for h in wl_records["dev"].of_type(HPA)} == {"frontend"}


def test_snapshot_cronjob_schedule_and_retention(wl_records: dict[str, Record]) -> None:
    for stack in ("dev", "prod"):
        record = wl_records[stack]
        cj = by_name(record, CRONJOB, "snapshots").inputs["spec"]
        assert cj["schedule"] == record.config.workloads.snapshot_schedule
        assert cj["concurrencyPolicy"] == "Forbid"
        env = {e["name"]: e["value"] for e in cj["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["SNAPSHOT_KEEP_LAST"] == str(record.config.workloads.snapshot_retention)
        assert len(env["QDRANT_NODE_URLS"].split(",")) == record.config.workloads.qdrant.replicas
        assert env["S3_BUCKET_SNAPSHOTS"] == record.config.physical_name("snapshots")


def test_embedder_rollout_fits_the_gpu_node_group(wl_records: dict[str, Record], wl_record_of: Any) -> None:
    # A surge pod needs a free GPU node: only when the node group can grow beyond the embedder's maximum.
    roomy = wl_record_of("prod", {"visionrag:cluster": {"gpuNodes": {"maxSize": 6}}})
    for record, surge in ((wl_records["dev"], 0), (wl_records["prod"], 0), (roomy, "25%")):
        ru = by_name(record, "kubernetes:apps/v1:Deployment", "embedder").inputs["spec"]["strategy"]["rollingUpdate"]
        assert ru["maxSurge"] == surge
        assert int(ru["maxUnavailable"]) == (0 if surge else 1)
        api = by_name(record, "kubernetes:apps/v1:Deployment", "api").inputs["spec"]["strategy"]["rollingUpdate"]
        assert api["maxSurge"] == "25%" and int(api["maxUnavailable"]) == 0
