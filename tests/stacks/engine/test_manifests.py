"""Recorded Kubernetes objects become plain YAML manifests, validated strictly for the cluster's version.

Until the workloads land in every stack, a small fixture program registers typed pulumi_kubernetes objects under a
component, one of them with a misspelled field that the strict schema must catch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from stacks import cli
from stacks.engine.manifests import api_version_of, build_manifests, clean, schema_version_for
from stacks.engine.offline import Record, run_stack


def _objects(*, typo: bool) -> Any:
    def program(cfg) -> None:  # type: ignore[no-untyped-def]
        comp = pulumi.ComponentResource("visionrag:test:Api", "api")
        opts = pulumi.ResourceOptions(parent=comp)
        labels: Any = {"app": "api"}
        container: dict[str, Any] = {
            "name": "api",
            "image": "ghcr.io/acme/api@sha256:" + "b" * 64,
            "ports": [{"containerPort": 8000}],
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        }
        if typo:
            container["imagePullPolcy"] = "Always"
        deployment_spec: Any = {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        }
        service_spec: Any = {"selector": labels, "ports": [{"port": 80, "targetPort": 8000}]}
        pdb_spec: Any = {"minAvailable": 1, "selector": {"matchLabels": labels}}
        k8s.core.v1.Namespace("api-ns", metadata={"name": "visionrag"}, opts=opts)
        k8s.apps.v1.Deployment(
            "api-deployment",
            metadata={"name": "api", "namespace": "visionrag", "labels": labels},
            spec=deployment_spec,
            opts=opts,
        )
        k8s.core.v1.Service(
            "api-service", metadata={"name": "api", "namespace": "visionrag"}, spec=service_spec, opts=opts
        )
        k8s.policy.v1.PodDisruptionBudget(
            "api-pdb", metadata={"name": "api", "namespace": "visionrag"}, spec=pdb_spec, opts=opts
        )
        k8s.helm.v3.Release("api-metrics", chart="metrics-server", version="3.12.2", opts=opts)

    return program


@pytest.fixture(scope="module")
def good() -> Record:
    return run_stack("dev", program=_objects(typo=False))


@pytest.fixture(scope="module")
def bad() -> Record:
    return run_stack("dev", program=_objects(typo=True))


def test_token_to_api_version() -> None:
    assert api_version_of("kubernetes:apps/v1:Deployment") == ("apps/v1", "Deployment")
    assert api_version_of("kubernetes:core/v1:Service") == ("v1", "Service")
    assert api_version_of("kubernetes:networking.k8s.io/v1:NetworkPolicy") == ("networking.k8s.io/v1", "NetworkPolicy")
    assert api_version_of("kubernetes:helm.sh/v3:Release") is None
    assert api_version_of("pulumi:providers:kubernetes") is None
    assert api_version_of("aws:s3/bucket:Bucket") is None


def test_clean_turns_integral_floats_into_ints_and_drops_nulls() -> None:
    assert clean({"a": 3.0, "b": None, "c": [1.0, None, 2.5], "d": {"e": None}}) == {"a": 3, "c": [1, 2.5], "d": {}}


def test_objects_are_valid_and_plain(good: Record) -> None:
    report = build_manifests(good)
    assert report.valid, report.errors
    assert report.schema_version == schema_version_for(good.config.cluster.kubernetes_version)
    kinds = sorted(m.kind for m in report.manifests)
    assert kinds == ["Deployment", "Namespace", "PodDisruptionBudget", "Service"]  # the Helm release is not one
    deployment = next(m for m in report.manifests if m.kind == "Deployment")
    assert list(deployment.body)[:3] == ["apiVersion", "kind", "metadata"]
    assert deployment.body["spec"]["replicas"] == 3 and isinstance(deployment.body["spec"]["replicas"], int)
    port = deployment.body["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert port == 8000 and isinstance(port, int)
    assert "status" not in deployment.body


def test_strict_validation_catches_unknown_field(bad: Record) -> None:
    report = build_manifests(bad)
    assert not report.valid
    [error] = report.errors
    assert error["kind"] == "Deployment"
    assert error["path"] == "spec.template.spec.containers.0"
    assert "imagePullPolcy" in error["message"]


def test_unsupported_kubernetes_version_is_an_error(good: Record) -> None:
    report = build_manifests(good, kubernetes_version="1.99")
    assert not report.valid
    assert "1.99" in report.errors[0]["message"]


def test_schema_version_picks_newest_not_newer() -> None:
    assert schema_version_for("1.33") == "1.33"
    assert schema_version_for("1.33.4") == "1.33"


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _walk(v)]
    if isinstance(value, list):
        return [x for v in value for x in _walk(v)]
    return [value]


def test_manifests_command_writes_yaml(monkeypatch: pytest.MonkeyPatch, good: Record, tmp_path: Path) -> None:
    monkeypatch.setattr(cli, "run_stack", lambda stack: good)
    out = io.StringIO()
    assert cli.main(["manifests", "dev", "--out", str(tmp_path / "m")], out=out, err=io.StringIO()) == 0
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == [
        "all.yaml",
        "deployment-visionrag-api.yaml",
        "namespace-visionrag.yaml",
        "poddisruptionbudget-visionrag-api.yaml",
        "service-visionrag-api.yaml",
    ]
    docs = list(yaml.safe_load_all((tmp_path / "m" / "all.yaml").read_text()))
    assert len(docs) == 4
    for doc in docs:
        leaves = _walk(doc)
        assert None not in leaves
        assert not any(isinstance(x, float) for x in leaves)
    assert "4 Kubernetes object(s)" in out.getvalue()


def test_manifests_command_exits_1_on_invalid(monkeypatch: pytest.MonkeyPatch, bad: Record, tmp_path: Path) -> None:
    monkeypatch.setattr(cli, "run_stack", lambda stack: bad)
    out = io.StringIO()
    assert cli.main(["manifests", "dev", "--out", str(tmp_path)], out=out, err=io.StringIO()) == 1
    assert "INVALID Deployment/api" in out.getvalue()


# Custom resources whose CRDs the cluster add-ons install (their schemas are not bundled with kubernetes-validate).
# policy.sigstore.dev: the policy-controller release installs it (infra/workloads/image_admission.py).
CRD_GROUPS = {"external-secrets.io", "elbv2.k8s.aws", "monitoring.coreos.com", "karpenter.sh", "policy.sigstore.dev"}


def _custom(meta: dict[str, Any]) -> Any:
    def program(cfg) -> None:  # type: ignore[no-untyped-def]
        comp = pulumi.ComponentResource("visionrag:test:Secrets", "sec")
        k8s.apiextensions.CustomResource(
            "sec-store",
            # A kind with no CRD schema kept in infra/workloads/crd_schemas.py: only the common checks apply.
            api_version="example.com/v1",
            kind="Widget",
            metadata=meta,
            spec={"size": 1},
            opts=pulumi.ResourceOptions(parent=comp),
        )

    return program


def test_custom_resources_get_the_common_checks() -> None:
    ok = build_manifests(run_stack("dev", program=_custom({"name": "aws", "namespace": "visionrag"})))
    assert ok.valid, ok.errors
    assert [u["kind"] for u in ok.unchecked] == ["Widget"]
    bad = build_manifests(run_stack("dev", program=_custom({"name": "aws", "labelz": {"a": "b"}})))
    assert not bad.valid
    assert "labelz" in bad.errors[0]["message"]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_manifest_is_valid(records: dict[str, Record], stack: str) -> None:
    report = build_manifests(records[stack])
    assert report.valid, report.errors
    unexpected = [u for u in report.unchecked if u["apiVersion"].split("/")[0] not in CRD_GROUPS]
    assert not unexpected, (
        f"no schema for these kinds; add the CRD's group here only if an add-on installs it: {unexpected}"
    )


def test_custom_resources_with_a_kept_crd_schema_are_checked_strictly() -> None:
    """A typo in a custom resource the API server would prune silently is an error in the preview."""
    from stacks.engine.manifests import Manifest, validate_manifest

    body = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "api", "namespace": "visionrag"},
        "spec": {"serviceRef": {"name": "api", "port": 8000}, "targetGroupArn": "arn:aws:x", "targetType": "ip"},
    }
    manifest = Manifest("urn:x", body["apiVersion"], body["kind"], "api", "visionrag", body)
    errors, checked = validate_manifest(manifest, "1.31")
    assert checked
    assert any("targetGroupArn" in e["message"] for e in errors), errors
    unknown = Manifest("urn:y", "example.com/v1", "Widget", "w", "visionrag", {**body, "apiVersion": "example.com/v1"})
    assert validate_manifest(unknown, "1.31")[1] is False
