"""Enum-like AWS inputs are checked against botocore's models: misspellings are caught, real values pass."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from stacks.engine.aws_values import ELB_SSL_POLICIES, check_aws_values, model_documented, model_enum
from stacks.engine.offline import Record, run_stack
from stacks.engine.plan import build_plan, exit_code


def _program(*, instance_type: str, node_types: list[str], ami: str, ssl_policy: str, engine: str, logs: list[str]):
    def program(cfg) -> None:  # type: ignore[no-untyped-def]
        comp = pulumi.ComponentResource("visionrag:test:Values", "vals")
        opts = pulumi.ResourceOptions(parent=comp)
        aws.ec2.LaunchTemplate(
            "vals-lt",
            instance_type=instance_type,
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"volume_size": 100, "volume_type": "gp3"}}],
            opts=opts,
        )
        aws.eks.Cluster(
            "vals-cluster",
            role_arn="arn:aws:iam::123456789012:role/eks",
            vpc_config={"subnet_ids": ["subnet-1"]},
            enabled_cluster_log_types=logs,
            opts=opts,
        )
        aws.eks.NodeGroup(
            "vals-gpu",
            cluster_name="c",
            node_role_arn="arn:aws:iam::123456789012:role/node",
            subnet_ids=["subnet-1"],
            scaling_config={"min_size": 0, "max_size": 1, "desired_size": 0},
            instance_types=node_types,
            ami_type=ami,
            capacity_type="ON_DEMAND",
            opts=opts,
        )
        aws.lb.Listener(
            "vals-https",
            load_balancer_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1",
            port=443,
            protocol="HTTPS",
            ssl_policy=ssl_policy,
            certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/1",
            default_actions=[{"type": "fixed-response", "fixed_response": {"content_type": "text/plain"}}],
            opts=opts,
        )
        aws.elasticache.ReplicationGroup(
            "vals-cache",
            description="cache",
            engine=engine,
            node_type="cache.r7g.large",
            opts=opts,
        )

    return program


GOOD = {
    "instance_type": "g5.xlarge",
    "node_types": ["g5.xlarge", "g6.2xlarge"],
    "ami": "AL2023_x86_64_NVIDIA",
    "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "engine": "valkey",
    "logs": ["api", "audit", "authenticator"],
}


@pytest.fixture(scope="module")
def good() -> Record:
    return run_stack("dev", program=_program(**GOOD))  # type: ignore[arg-type]


def test_valid_values_pass(good: Record) -> None:
    report = check_aws_values(good)
    assert report.valid, report.errors
    # 1 launch template type + 1 volume type + 3 log types + 2 node types + ami + capacity + ssl + protocol
    # + engine + node type
    assert report.checked == 13


@pytest.mark.parametrize(
    ("field", "bad", "policy", "suggestion"),
    [
        ("instance_type", "g5.xlarg", "aws-ec2-instance-type", "g5.xlarge"),
        ("node_types", ["g5.xlarge", "g6.2xlrge"], "aws-ec2-instance-type", "g6.2xlarge"),
        ("ami", "AL2023_x86_64_NVIDA", "aws-eks-ami-type", "AL2023_x86_64_NVIDIA"),
        (
            "ssl_policy",
            "ELBSecurityPolicy-TLS13-1-2-2021-6",
            "aws-elb-ssl-policy",
            "ELBSecurityPolicy-TLS13-1-2-2021-06",
        ),
        ("engine", "redys", "aws-elasticache-engine", "redis"),
        ("logs", ["api", "controllermanager"], "aws-eks-log-type", "controllerManager"),
    ],
)
def test_misspelled_value_is_caught(field: str, bad, policy: str, suggestion: str) -> None:  # type: ignore[no-untyped-def]
    record = run_stack("dev", program=_program(**{**GOOD, field: bad}))  # type: ignore[arg-type]
    report = check_aws_values(record)
    assert len(report.errors) == 1, report.errors
    [error] = report.errors
    assert error["policy"] == policy
    assert error["level"] == "mandatory"
    assert error["urn"].startswith("urn:pulumi:dev::visionrag::visionrag:test:Values$")
    assert f"did you mean {suggestion!r}" in error["message"]
    # It fails the preview like a mandatory violation.
    plan = build_plan(record)
    assert plan["awsValues"]["errors"] == report.errors
    assert plan["summary"]["invalidAwsValues"] == 1
    assert exit_code(plan) == 1
    json.dumps(plan)


def test_sources_come_from_the_installed_botocore() -> None:
    assert "g5.xlarge" in model_enum("ec2", "InstanceType").values
    assert "AL2023_x86_64_NVIDIA" in model_enum("eks", "AMITypes").values
    engines = model_documented("elasticache", "CreateReplicationGroupMessage", "Engine", r"<code>([a-z]+)</code>")
    assert engines.values == {"valkey", "redis"}
    assert "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09" in ELB_SSL_POLICIES


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_uses_valid_values(records: dict[str, Record], stack: str) -> None:
    report = check_aws_values(records[stack])
    assert report.valid, report.errors
