"""The monthly restore drill CronJob (infra/workloads/restore_drill.py): prod only by default, the snapshot job's
image and pod shape, its own read-only identity, no retry of a drill that answered, and only Qdrant + HTTPS out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.workloads.restore_drill import DEFAULT_SCHEDULE, RestoreDrillJob, RestoreDrillSettings
from stacks.engine.offline import Record
from tests.infra.workloads.graph import CRONJOB, by_name, containers, name, pod_template

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _policies(record: Record) -> dict[str, dict[str, Any]]:
    return {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in record.of_type(NETPOL)}


def test_prod_runs_the_drill_monthly_with_the_snapshot_jobs_pod(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    cronjob = by_name(record, CRONJOB, "restore-drill").inputs["spec"]
    assert cronjob["schedule"] == DEFAULT_SCHEDULE == record.config.workloads.restore_drill.schedule
    assert len(DEFAULT_SCHEDULE.split()) == 5 and DEFAULT_SCHEDULE.split()[2:] == ["1", "*", "*"]  # monthly
    assert cronjob["concurrencyPolicy"] == "Forbid" and cronjob["timeZone"] == "Etc/UTC"
    job = cronjob["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2 and job["activeDeadlineSeconds"] > 0
    # A mismatch (1) or bad input (2) is an answer: the Job fails at once instead of restoring again.
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["operator"] == "In"
    assert sorted(rule["onExitCodes"]["values"]) == [1, 2] and rule["onExitCodes"]["containerName"] == "restore-drill"
    pod = pod_template(by_name(record, CRONJOB, "restore-drill"))
    snapshots_pod = pod_template(by_name(record, CRONJOB, "snapshots"))
    assert pod["spec"]["serviceAccountName"] == "restore-drill" and pod["spec"]["restartPolicy"] == "Never"
    (drill,), (snap,) = containers(pod), containers(snapshots_pod)
    assert drill["image"] == snap["image"] == record.config.workloads.snapshots.image  # the worker image
    assert drill["command"][:3] == ["python", "-m", "app.ops.drill"]
    assert drill["securityContext"] == snap["securityContext"] and drill["resources"] == snap["resources"]
    env = {e["name"]: e["value"] for e in drill["env"]}
    assert len(env["QDRANT_NODE_URLS"].split(",")) == record.config.workloads.qdrant.replicas
    assert env["AUDIT_ACTOR"] == "system:serviceaccount:visionrag:restore-drill" and env["S3_AUTH"] == "iam"
    assert env["S3_BUCKET_AUDIT"] == record.config.physical_name("audit")
    assert env["S3_BUCKET_SNAPSHOTS"] == record.config.physical_name("snapshots")


def test_drill_network_reaches_qdrant_and_https_only(wl_records: dict[str, Record]) -> None:
    policies = _policies(wl_records["prod"])
    drill = policies["allow-restore-drill"]
    assert drill["podSelector"]["matchLabels"] == {"visionrag.io/role": "restore-drill"}
    assert drill["policyTypes"] == ["Egress"] and "ingress" not in drill
    ports = sorted(int(p["port"]) for rule in drill["egress"] for p in rule["ports"])
    assert ports == [443, 6333]
    # Qdrant downloads the snapshot from the presigned S3 URL itself: 443 out, never the node's IMDS.
    https = [r for r in policies["allow-qdrant"]["egress"] if [int(p["port"]) for p in r["ports"]] == [443]]
    assert https and "169.254.169.254/32" in https[0]["to"][0]["ipBlock"]["except"]


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_off_outside_prod_by_default(wl_records: dict[str, Record], stack: str) -> None:
    record = wl_records[stack]
    assert record.config.workloads.restore_drill.enabled is False
    assert not [r for r in record.of_type(CRONJOB) if name(r) == "restore-drill"]
    assert "allow-restore-drill" not in _policies(record)


def test_a_stack_can_turn_it_on_with_its_own_thresholds(wl_record_of: Callable[..., Record]) -> None:
    drill = {"enabled": True, "schedule": "5 6 15 * *", "queries": 50, "minOverlap": 0.95}
    record = wl_record_of("staging", {"visionrag:workloads": {"restoreDrill": drill}})
    cronjob = by_name(record, CRONJOB, "restore-drill").inputs["spec"]
    assert cronjob["schedule"] == "5 6 15 * *"
    (container,) = containers(pod_template(by_name(record, CRONJOB, "restore-drill")))
    command = container["command"]
    assert command[command.index("--queries") + 1] == "50" and command[command.index("--min-overlap") + 1] == "0.95"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "monthly"}, "5-field cron"),
        ({"queries": 0}, "queries: 0; allowed 1..1000"),
        ({"top_k": 101}, "top_k: 101; allowed 1..100"),
        ({"min_overlap": 1.5}, "min_overlap: 1.5; allowed 0..1"),
    ],
)
def test_settings_refuse_what_the_drill_cannot_run(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestoreDrillSettings(**kwargs)


def test_component_refuses_another_command() -> None:
    from infra.workloads.snapshots import SnapshotJobArgs

    args = SnapshotJobArgs(
        provider=None,  # type: ignore[arg-type]
        namespace="visionrag",
        image="x:1",
        command=["python", "-m", "app.ops.snapshots", "create"],
        schedule=DEFAULT_SCHEDULE,
        resources=None,  # type: ignore[arg-type]
        service_account="restore-drill",
        env={},
        secrets={},
    )
    with pytest.raises(ValueError, match=r"app\.ops\.drill"):
        RestoreDrillJob("drill", args)
