"""The canary gate against moto: healthy targets and quiet alarms pass; anything else holds the rollout."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks.verify import canary as verify_canary

REGION = "us-east-1"
_SEQ = itertools.count()


@pytest.fixture(scope="module")
def account() -> Iterator[dict[str, Any]]:
    # One moto account per module (loading moto's EC2 images is the slow part); each test gets its own names.
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
            mp.setenv(k, v)
        with mock_aws():
            ec2 = boto3.client("ec2", region_name=REGION)
            yield {
                "ec2": ec2,
                "elbv2": boto3.client("elbv2", region_name=REGION),
                "cw": boto3.client("cloudwatch", region_name=REGION),
                "vpc": ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"],
                "image": ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"],
            }


@pytest.fixture
def env(account: dict[str, Any]) -> dict[str, Any]:
    ec2, elbv2, cw = account["ec2"], account["elbv2"], account["cw"]
    tag = str(next(_SEQ))
    groups = {}
    for name in ("api", "canary"):
        groups[name] = elbv2.create_target_group(
            Name=f"{name}-{tag}", Protocol="HTTP", Port=8000, VpcId=account["vpc"], TargetType="instance"
        )["TargetGroups"][0]["TargetGroupArn"]
    instances = [
        i["InstanceId"] for i in ec2.run_instances(ImageId=account["image"], MinCount=2, MaxCount=2)["Instances"]
    ]
    elbv2.register_targets(TargetGroupArn=groups["api"], Targets=[{"Id": instances[0]}])
    elbv2.register_targets(TargetGroupArn=groups["canary"], Targets=[{"Id": instances[1]}])
    alarms = [f"visionrag-prod-api-5xx-{tag}", f"visionrag-prod-api-latency-{tag}"]
    for name in alarms:
        cw.put_metric_alarm(
            AlarmName=name,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=5,
            ComparisonOperator="GreaterThanThreshold",
        )
    outputs = {
        "region": REGION,
        "apiTargetGroupArn": groups["api"],
        "canaryTargetGroupArn": groups["canary"],
        "alarmNames": alarms,
    }
    return {**account, "outputs": outputs, "instances": instances, "alarms": alarms}


def failed(outputs: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r.resource, r.check) for r in verify_canary.gate(outputs) if not r.ok}


def test_healthy_canary_passes(env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert failed(env["outputs"]) == set()
    path = tmp_path / "o.json"
    path.write_text(json.dumps(env["outputs"]))
    assert verify_canary.main(["prod", "--outputs", str(path)]) == 0
    assert "may take more traffic" in capsys.readouterr().out


def test_firing_alarm_holds_the_rollout(
    env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    firing = env["alarms"][0]
    env["cw"].set_alarm_state(AlarmName=firing, StateValue="ALARM", StateReason="5xx spike")
    assert failed(env["outputs"]) == {(firing, "no alarm firing")}
    path = tmp_path / "o.json"
    path.write_text(json.dumps(env["outputs"]))
    assert verify_canary.main(["prod", "--outputs", str(path)]) == 1
    assert f"{firing}: no alarm firing (StateValue=ALARM)" in capsys.readouterr().err


def test_deleted_alarm_is_not_a_quiet_alarm(env: dict[str, Any]) -> None:
    env["cw"].delete_alarms(AlarmNames=[env["alarms"][1]])
    assert failed(env["outputs"]) == {(env["alarms"][1], "no alarm firing")}


def test_canary_without_targets_holds(env: dict[str, Any]) -> None:
    env["elbv2"].deregister_targets(
        TargetGroupArn=env["outputs"]["canaryTargetGroupArn"], Targets=[{"Id": env["instances"][1]}]
    )
    assert failed(env["outputs"]) == {("canary target group", "targets healthy")}


def test_unhealthy_canary_target_holds(env: dict[str, Any]) -> None:
    env["ec2"].stop_instances(InstanceIds=[env["instances"][1]])
    assert ("canary target group", "targets healthy") in failed(env["outputs"])


def test_missing_outputs_hold(env: dict[str, Any]) -> None:
    outputs = {k: v for k, v in env["outputs"].items() if k not in ("canaryTargetGroupArn", "alarmNames")}
    assert failed(outputs) == {("canaryTargetGroupArn", "present"), ("alarmNames", "present")}
