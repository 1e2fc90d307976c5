"""CiRunners: the in-VPC GitHub Actions runner of staging/prod, private, least-privilege, only for deploy/preview."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.ci_runners import (
    RUNNER_WORKFLOWS,
    CiRunners,
    CiRunnersArgs,
    runner_label,
    runner_project_name,
)
from stacks.config import ConfigError
from stacks.engine.offline import Record, RecordedResource, run_stack
from tests.infra.platform_graph import as_list, component, policy, statements, under

RUNNER = "visionrag:infra:CiRunners"
PROJECT = "aws:codebuild/project:Project"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
CI_STACKS = ("staging", "prod")
CONNECTION = "arn:aws:codeconnections:us-east-1:123456789012:connection/3f1c2a7e-8b4d-4e2a-9c61-5a0d7e9b1c24"
DEV_RUNNER = {
    "visionrag:delivery": {"runner": True, "githubRepository": "acme/visionrag", "codeConnectionArn": CONNECTION}
}


def _runner(record: Record) -> RecordedResource:
    return component(record, RUNNER)


def _one(record: Record, type_: str) -> RecordedResource:
    (found,) = under(record, _runner(record), type_)
    return found


def _runner_sg_id(record: Record) -> str:
    sg = _one(record, "aws:ec2/securityGroup:SecurityGroup")
    return str(sg.outputs["id"])


@pytest.mark.parametrize("stack", CI_STACKS)
def test_runner_project_lives_in_the_private_subnets_behind_its_own_group(
    records: dict[str, Record], stack: str
) -> None:
    record = records[stack]
    project = _one(record, PROJECT)
    assert project.inputs["name"] == runner_project_name(record.config.physical_name())
    assert record.outputs["ciRunnerProject"] == project.inputs["name"]
    vpc = project.inputs["vpcConfig"]
    assert vpc["subnets"] == record.outputs["privateSubnetIds"]
    assert vpc["vpcId"] == record.outputs["vpcId"]
    assert vpc["securityGroupIds"] == [_runner_sg_id(record)]
    env = project.inputs["environment"]
    assert env["privilegedMode"] is False and env["type"] == "LINUX_CONTAINER"
    assert env["computeType"] == record.config.delivery.runner_compute_type
    assert project.inputs["projectVisibility"] == "PRIVATE"
    # The source is the configured repository through the approved connection: no stored token.
    source = project.inputs["source"]
    assert source["location"] == f"https://github.com/{record.config.delivery.github_repository}.git"
    assert source["auth"] == {"type": "CODECONNECTIONS", "resource": record.config.delivery.code_connection_arn}
    logs = project.inputs["logsConfig"]
    assert logs["cloudwatchLogs"]["status"] == "ENABLED" and logs["s3Logs"]["status"] == "DISABLED"


@pytest.mark.parametrize("stack", CI_STACKS)
def test_nothing_reaches_the_runner_and_it_reaches_only_https_and_the_endpoint(
    records: dict[str, Record], stack: str
) -> None:
    record = records[stack]
    runner_sg = _runner_sg_id(record)
    # No inbound rule names the runner's group as its target: nothing public, nothing from the VPC either.
    assert not [r for r in record.of_type(SG_INGRESS) if r.inputs["securityGroupId"] == runner_sg]
    egress = [r for r in record.of_type(SG_EGRESS) if r.inputs["securityGroupId"] == runner_sg]
    assert egress and all(r.inputs["fromPort"] == r.inputs["toPort"] == 443 for r in egress)
    assert all(r.inputs["ipProtocol"] == "tcp" for r in egress)
    # The cluster endpoint admits it on 443, and that is the only group that names it as a source.
    admitted = [r for r in record.of_type(SG_INGRESS) if r.inputs.get("referencedSecurityGroupId") == runner_sg]
    cluster = component(record, "visionrag:infra:Cluster")
    (eks,) = under(record, cluster, "aws:eks/cluster:Cluster")
    cluster_sg = eks.outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert [(r.inputs["securityGroupId"], r.inputs["fromPort"]) for r in admitted] == [(cluster_sg, 443)]


@pytest.mark.parametrize("stack", CI_STACKS)
def test_only_the_deploy_and_preview_workflows_start_builds(records: dict[str, Record], stack: str) -> None:
    hook = _one(records[stack], "aws:codebuild/webhook:Webhook")
    (group,) = hook.inputs["filterGroups"]
    filters = {f["type"]: f["pattern"] for f in group["filters"]}
    assert filters == {"EVENT": "WORKFLOW_JOB_QUEUED", "WORKFLOW_NAME": f"^({'|'.join(RUNNER_WORKFLOWS)})$"}
    assert hook.inputs["buildType"] == "BUILD"


@pytest.mark.parametrize("stack", CI_STACKS)
def test_the_service_role_grants_nothing_beyond_logs_enis_and_the_connection(
    records: dict[str, Record], stack: str
) -> None:
    record = records[stack]
    role = _one(record, "aws:iam/role:Role")
    (trust,) = statements(policy(role, "assumeRolePolicy"))
    assert trust["Principal"] == {"Service": "codebuild.amazonaws.com"}
    doc = _one(record, "aws:iam/rolePolicy:RolePolicy")
    actions = {a for st in statements(policy(doc)) for a in as_list(st["Action"])}
    assert all(a.split(":")[0] in {"logs", "ec2", "codeconnections"} for a in actions), actions
    assert not [a for a in actions if "*" in a]
    by_sid = {st["Sid"]: st for st in statements(policy(doc))}
    assert by_sid["UseGitHubConnection"]["Resource"] == record.config.delivery.code_connection_arn
    eni = by_sid["AttachEnisInStackSubnetsOnly"]["Condition"]["StringEquals"]
    assert eni["ec2:AuthorizedService"] == "codebuild.amazonaws.com"
    subnets = as_list(eni["ec2:Subnet"])
    assert sorted(s.rsplit("/", 1)[-1] for s in subnets) == sorted(record.outputs["privateSubnetIds"])
    # Its logs are our group, KMS-encrypted, with the cluster's retention.
    log_group = _one(record, "aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["kmsKeyId"] == record.outputs["kmsKeyArns"]["logs"]
    assert log_group.inputs["retentionInDays"] == record.config.cluster.log_retention_days


def test_dev_has_no_runner_unless_asked(records: dict[str, Record], record_of: Any) -> None:
    assert not records["dev"].of_type(RUNNER)
    assert "ciRunnerProject" not in records["dev"].outputs
    dev = record_of("dev", overrides=DEV_RUNNER)
    assert _one(dev, PROJECT).inputs["name"] == "visionrag-dev-gha-runner"


def test_runner_label_is_what_codebuild_answers() -> None:
    assert runner_label("visionrag-prod-gha-runner") == (
        "codebuild-visionrag-prod-gha-runner-${{ github.run_id }}-${{ github.run_attempt }}"
    )


@pytest.mark.parametrize(
    ("delivery", "key"),
    [
        ({"runner": True, "githubRepository": "acme/visionrag"}, "delivery.codeConnectionArn"),
        ({"runner": True, "codeConnectionArn": CONNECTION}, "delivery.githubRepository"),
        ({**DEV_RUNNER["visionrag:delivery"], "githubRepository": "not a repo"}, "delivery.githubRepository"),
        (
            {**DEV_RUNNER["visionrag:delivery"], "codeConnectionArn": "arn:aws:iam::1:role/x"},
            "delivery.codeConnectionArn",
        ),
        (
            {**DEV_RUNNER["visionrag:delivery"], "runnerComputeType": "BUILD_GENERAL1_2XLARGE"},
            "delivery.runnerComputeType",
        ),
    ],
)
def test_bad_runner_config_is_refused_naming_the_key(delivery: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        run_stack("dev", overrides={"visionrag:delivery": delivery})
    assert f"visionrag:{key}:" in str(err.value)


@pytest.mark.parametrize("stack", CI_STACKS)
def test_a_private_endpoint_stack_cannot_turn_the_runner_off(stack: str) -> None:
    with pytest.raises(ConfigError, match=r"visionrag:delivery\.runner: .*must be true"):
        run_stack(stack, overrides={"visionrag:delivery": {"runner": False}})


def test_component_args_are_validated() -> None:
    args = CiRunnersArgs(
        name_prefix="visionrag-dev",
        region="us-east-1",
        account_id="123456789012",
        github_repository="acme/visionrag",
        code_connection_arn=CONNECTION,
        compute_type="BUILD_GENERAL1_SMALL",
        build_timeout_minutes=60,
        vpc_id="vpc-1",
        private_subnet_ids=["subnet-1", "subnet-2"],
        cluster_security_group_id="sg-1",
        logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/x",
        log_retention_days=30,
    )
    for change, message in (
        ({"github_repository": "acme"}, "github_repository"),
        ({"code_connection_arn": "arn:aws:codeconnections:us-east-1:123456789012:host/x"}, "code_connection_arn"),
        ({"compute_type": "BUILD_LAMBDA_1GB"}, "compute_type"),
        ({"build_timeout_minutes": 3000}, "build_timeout_minutes"),
        ({"log_retention_days": 2}, "log_retention_days"),
        ({"private_subnet_ids": ["subnet-1"]}, "private_subnet_ids"),
    ):
        with pytest.raises(ValueError, match=message):
            CiRunners("r", dataclasses.replace(args, **change))
