"""The real program wires Workloads to the real platform outputs (the committed stacks, shared `records`)."""

from __future__ import annotations

import json
from typing import Any

from stacks.engine.offline import Record
from tests.infra.workloads.graph import RELEASE, SA, TGB, by_name, name, trust_for

EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"


def _one(record: Record, type_: str, resource_name: str) -> Any:
    return record.one(type_, resource_name)


def test_every_kubernetes_object_uses_the_cluster_provider(records: dict[str, Record]) -> None:
    for stack, record in records.items():
        (provider,) = [r for r in record.resources if r.type == "pulumi:providers:kubernetes"]
        objects = [r for r in record.resources if r.type.startswith("kubernetes:")]
        assert any(r.type == "kubernetes:apps/v1:Deployment" for r in objects), stack
        for r in objects:
            assert r.provider is not None and r.provider.startswith(provider.urn), f"{stack}: {r.urn}"


def test_target_group_bindings_use_the_edge_target_groups(records: dict[str, Record]) -> None:
    record = records["prod"]
    tg = _one(record, "aws:lb/targetGroup:TargetGroup", "edge-tg-api")
    binding = by_name(record, TGB, "api").inputs["spec"]
    assert binding["targetGroupARN"] == tg.outputs["arn"]
    assert "networking" not in binding  # the ALB -> node rules are infra/edge.py's (test_network_peers.py)


def test_irsa_trusts_the_cluster_oidc_provider(records: dict[str, Record]) -> None:
    record = records["prod"]
    (oidc,) = record.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = oidc.outputs["arn"].split("oidc-provider/", 1)[1]
    for sa in ("api", "worker", "embedder", "snapshots", "restore-drill", "secrets-reader"):
        (stmt,) = trust_for(record, sa)["Statement"]
        assert stmt["Principal"]["Federated"] == oidc.outputs["arn"]
        assert stmt["Condition"]["StringEquals"][f"{issuer}:sub"] == f"system:serviceaccount:visionrag:{sa}"


def test_secrets_and_buckets_are_the_platform_ones(records: dict[str, Record]) -> None:
    record = records["prod"]
    secret_names = {r.inputs["name"] for r in record.of_type("aws:secretsmanager/secret:Secret")}
    for es in record.of_type(EXTERNAL_SECRET):
        spec = es.inputs["spec"]
        ref = spec["dataFrom"][0]["extract"] if "dataFrom" in spec else spec["data"][0]["remoteRef"]
        assert ref["key"] in secret_names, name(es)
    bucket_names = {r.outputs["bucket"] for r in record.of_type("aws:s3/bucket:Bucket")}
    env = {
        e["name"]: e["value"]
        for e in by_name(record, "kubernetes:apps/v1:Deployment", "api").inputs["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert env["S3_BUCKET_PAGES"] in bucket_names and env["S3_BUCKET_AUDIT"] in bucket_names
    kms = {r.outputs["arn"] for r in record.of_type("aws:kms/key:Key")}
    assert env["S3_KMS_KEY_ID"] in kms


def test_load_balancer_controller_gets_the_real_vpc(records: dict[str, Record]) -> None:
    record = records["prod"]
    (vpc,) = record.of_type("aws:ec2/vpc:Vpc")
    values = next(
        r.inputs["values"] for r in record.of_type(RELEASE) if r.inputs["name"] == "aws-load-balancer-controller"
    )
    assert values["vpcId"] == vpc.outputs["id"]
    assert values["region"] == record.config.region


def test_service_accounts_carry_their_role_arns(records: dict[str, Record]) -> None:
    record = records["prod"]
    roles = {r.outputs["arn"] for r in record.of_type("aws:iam/role:Role")}
    for sa in record.of_type(SA):
        arn = (sa.inputs["metadata"].get("annotations") or {}).get("eks.amazonaws.com/role-arn")
        if arn is not None:
            assert arn in roles
    exported = record.outputs["workloadRoleArns"]
    # restore-drill: prod runs the monthly restore drill (tier default), with its own role.
    assert set(exported) == {"api", "worker", "embedder", "snapshots", "restore-drill", "secrets-reader"}
    assert json.dumps(exported)
