"""The offline engine itself: what it records, and the mistakes it refuses instead of papering over."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from stacks.engine.mocks import UnansweredInvoke
from stacks.engine.offline import DuplicateUrn, run_stack


def _nested(cfg) -> None:  # type: ignore[no-untyped-def]
    outer = pulumi.ComponentResource("visionrag:test:Outer", "outer")
    inner = pulumi.ComponentResource("visionrag:test:Inner", "outer-inner", opts=pulumi.ResourceOptions(parent=outer))
    key = aws.kms.Key("outer-inner-key", enable_key_rotation=True, opts=pulumi.ResourceOptions(parent=inner))
    aws.kms.Alias(
        "outer-inner-alias",
        name="alias/visionrag-dev-test",
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(parent=inner),
    )
    zones = aws.get_availability_zones(state="available")
    pulumi.export("zones", zones.names[:2])
    pulumi.export("keyArn", key.arn)


def test_records_types_parents_dependencies_and_outputs() -> None:
    r = run_stack("dev", program=_nested)
    outer = r.one("visionrag:test:Outer", "outer")
    inner = r.one("visionrag:test:Inner", "outer-inner")
    key = r.one("aws:kms/key:Key", "outer-inner-key")
    alias = r.one("aws:kms/alias:Alias", "outer-inner-alias")
    # URN type chain as the real engine builds it: parent types joined with '$', the Stack type never in it.
    assert key.urn == (
        "urn:pulumi:dev::visionrag::visionrag:test:Outer$visionrag:test:Inner$aws:kms/key:Key::outer-inner-key"
    )
    assert (outer.custom, inner.custom, key.custom) == (False, False, True)
    assert inner.parent == outer.urn and key.parent == inner.urn
    assert key.urn in alias.dependencies
    assert key.inputs == {"enableKeyRotation": True}
    # Computed outputs a program reads come from the mocks, and flow into dependants' inputs.
    assert alias.inputs["targetKeyId"] == key.outputs["keyId"]
    assert key.outputs["arn"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert r.outputs == {"zones": ["us-east-1a", "us-east-1b"], "keyArn": key.outputs["arn"]}
    assert r.invokes == [("aws:index/getAvailabilityZones:getAvailabilityZones", {"state": "available"})]
    assert {x.urn for x in r.children(inner.urn)} == {key.urn, alias.urn}


def test_runs_are_deterministic_and_isolated() -> None:
    first = run_stack("dev", program=_nested)
    second = run_stack("dev", program=_nested)
    assert first.to_plan() == second.to_plan()
    assert len(second.resources) == len(first.resources)  # nothing carried over from the previous run


def _unanswered(cfg) -> None:  # type: ignore[no-untyped-def]
    aws.ec2.get_vpc(default=True)


def test_unanswered_invoke_is_an_error() -> None:
    with pytest.raises(UnansweredInvoke, match="aws:ec2/getVpc:getVpc"):
        run_stack("dev", program=_unanswered)


def _duplicate(cfg) -> None:  # type: ignore[no-untyped-def]
    comp = pulumi.ComponentResource("visionrag:test:Dup", "dup")
    aws.s3.Bucket("dup-bucket", bucket="a", opts=pulumi.ResourceOptions(parent=comp))
    aws.s3.Bucket("dup-bucket", bucket="b", opts=pulumi.ResourceOptions(parent=comp))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_duplicate_urn_is_an_error() -> None:
    with pytest.raises(DuplicateUrn, match="dup-bucket"):
        run_stack("dev", program=_duplicate)
