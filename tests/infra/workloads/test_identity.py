"""One ServiceAccount and IRSA role per workload, trust pinned to it, permissions scoped to what it touches."""

from __future__ import annotations

import pytest

from stacks.engine.offline import Record
from tests.infra.workloads.graph import SA, actions, by_name, name, resources_of, role_policy_for, trust_for, workloads
from tests.infra.workloads.platform_stub import ISSUER

IRSA = ("api", "worker", "embedder", "snapshots", "restore-drill", "secrets-reader")


@pytest.mark.parametrize("sa", IRSA)
def test_trust_is_pinned_to_the_service_account(wl_records: dict[str, Record], sa: str) -> None:
    (stmt,) = trust_for(wl_records["prod"], sa)["Statement"]
    assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert stmt["Principal"]["Federated"].endswith(f"oidc-provider/{ISSUER}")
    cond = stmt["Condition"]["StringEquals"]
    assert cond[f"{ISSUER}:sub"] == f"system:serviceaccount:visionrag:{sa}"
    assert cond[f"{ISSUER}:aud"] == "sts.amazonaws.com"


def test_each_workload_runs_as_its_own_service_account(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    used = {name(r): pod["spec"]["serviceAccountName"] for r, pod in workloads(record)}
    assert used == {
        "api": "api",
        "worker": "worker",
        "embedder": "embedder",
        "qdrant": "qdrant",
        "snapshots": "snapshots",
        "frontend": "frontend",
        "clamav": "clamav",
        "restore-drill": "restore-drill",
    }
    for sa in record.of_type(SA):
        # The add-on controllers watch the Kubernetes API; the OTLP collector never calls it.
        controller = sa.inputs["metadata"]["namespace"] == "visionrag-system" and name(sa) != "otel-collector"
        assert sa.inputs["automountServiceAccountToken"] is controller, name(sa)
    # qdrant calls no AWS API: no role at all
    assert "annotations" not in by_name(record, SA, "qdrant").inputs["metadata"]
    assert "annotations" not in by_name(record, SA, "clamav").inputs["metadata"]


def _grants(record: Record, sa: str) -> dict[str, set[str]]:
    """action -> resources, over every statement of the role."""
    out: dict[str, set[str]] = {}
    for st in role_policy_for(record, sa)["Statement"]:
        assert st["Effect"] == "Allow"
        for a in actions(st):
            assert a != "*" and not a.endswith(":*"), f"{sa}: wildcard action {a}"
            out.setdefault(a, set()).update(resources_of(st))
    return out


def test_api_and_worker_touch_pages_only(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    pages = f"arn:aws:s3:::{record.config.physical_name('pages')}"
    for sa in ("api", "worker"):
        g = _grants(record, sa)
        assert g["s3:GetObject"] == {f"{pages}/*"} and g["s3:PutObject"] >= {f"{pages}/*"}
        assert g["s3:ListBucket"] == {pages}
        assert not any("snapshots" in r or "models" in r for rs in g.values() for r in rs)
        assert "kms:GenerateDataKey" in g
    # every process that acts appends audit events (app/core/audit.py); nobody reads, lists or deletes them
    audit = f"arn:aws:s3:::{record.config.physical_name('audit')}"
    for sa in ("api", "worker", "snapshots", "restore-drill"):
        g = _grants(record, sa)
        assert f"{audit}/*" in g["s3:PutObject"], sa
        assert not any(r.startswith(audit) for a, rs in g.items() if a != "s3:PutObject" for r in rs), sa
    for sa in ("embedder", "secrets-reader"):
        assert not any(r.startswith(audit) for rs in _grants(record, sa).values() for r in rs), sa


def test_snapshot_job_touches_snapshots_only(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    snaps = f"arn:aws:s3:::{record.config.physical_name('snapshots')}"
    audit = f"arn:aws:s3:::{record.config.physical_name('audit')}/*"
    g = _grants(record, "snapshots")
    s3 = {r for a, rs in g.items() if a.startswith("s3:") for r in rs}
    assert s3 == {snaps, f"{snaps}/*", audit}


def test_restore_drill_reads_snapshots_and_appends_audit_only(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    snaps = f"arn:aws:s3:::{record.config.physical_name('snapshots')}"
    audit = f"arn:aws:s3:::{record.config.physical_name('audit')}/*"
    g = _grants(record, "restore-drill")
    assert {a for a in g if a.startswith("s3:")} == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    assert g["s3:GetObject"] == {f"{snaps}/*"} and g["s3:ListBucket"] == {snaps} and g["s3:PutObject"] == {audit}
    assert "s3:DeleteObject" not in g  # a drill never touches the backups it proves
    # Off outside prod (tier default): no role, no ServiceAccount.
    for stack in ("dev", "staging"):
        assert not [sa for sa in wl_records[stack].of_type(SA) if name(sa) == "restore-drill"]


def test_embedder_reads_models_only(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    models = f"arn:aws:s3:::{record.config.physical_name('models')}"
    g = _grants(record, "embedder")
    assert {a for a in g if a.startswith("s3:")} == {"s3:GetObject", "s3:ListBucket"}
    assert {r for a, rs in g.items() if a.startswith("s3:") for r in rs} == {models, f"{models}/*"}
    assert "kms:GenerateDataKey" not in g and "kms:Encrypt" not in g


def test_kms_use_only_through_the_owning_service(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    for sa, service in (("api", "s3"), ("embedder", "s3"), ("snapshots", "s3"), ("secrets-reader", "secretsmanager")):
        kms = [s for s in role_policy_for(record, sa)["Statement"] if any(a.startswith("kms:") for a in actions(s))]
        assert kms, sa
        for st in kms:
            assert st["Condition"]["StringEquals"]["kms:ViaService"] == f"{service}.us-east-1.amazonaws.com"


def test_secret_store_role_reads_project_secrets_only(wl_records: dict[str, Record]) -> None:
    g = _grants(wl_records["prod"], "secrets-reader")
    assert set(g) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "kms:DescribeKey",
    }
    for arn in g["secretsmanager:GetSecretValue"]:
        assert arn.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:visionrag-prod/")
