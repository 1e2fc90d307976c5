"""Keys: every customer-managed key rotates, has the longest deletion window and keeps the account root as admin."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.keys import DELETION_WINDOW_DAYS, PURPOSES, Keys, KeysArgs
from stacks.config import StackConfig
from stacks.engine.offline import Record, RecordedResource, run_stack

STACKS = ("dev", "staging", "prod")
_ASG_ROLE = "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"


def _keys_component(record: Record) -> RecordedResource:
    (component,) = [r for r in record.resources if r.type == "visionrag:infra:Keys"]
    return component


def _policy(key: RecordedResource) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(key.inputs["policy"])
    return doc


def _statement(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in doc["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, f"no statement {sid!r} in {doc}"
    return found[0]


@pytest.mark.parametrize("stack", STACKS)
def test_one_key_per_purpose_with_rotation_and_30_day_window(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    component = _keys_component(record)
    keys = {k.name: k for k in record.of_type(KEY) if k.parent == component.urn}
    assert set(keys) == {f"keys-{p}" for p in PURPOSES}
    for key in keys.values():
        assert key.inputs["enableKeyRotation"] is True, key.name
        assert key.inputs["rotationPeriodInDays"] == 365
        assert key.inputs["deletionWindowInDays"] == DELETION_WINDOW_DAYS == 30
        assert key.inputs["bypassPolicyLockoutSafetyCheck"] is False
        assert key.inputs["customerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
        assert key.inputs["tags"]["project"] == "visionrag"
        assert key.inputs["tags"]["tier"] == stack


@pytest.mark.parametrize("stack", STACKS)
def test_every_key_policy_keeps_the_account_root_as_admin(records: dict[str, Record], stack: str) -> None:
    for key in records[stack].of_type(KEY):
        if not key.name.startswith("keys-"):
            continue
        root = _statement(_policy(key), "AccountRootIsKeyAdmin")
        assert root["Effect"] == "Allow"
        assert root["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
        assert root["Action"] == "kms:*"
        # Nobody but the root and the named service principals: no wildcard principal anywhere.
        for statement in _policy(key)["Statement"]:
            assert statement.get("Principal") != "*", (key.name, statement)


@pytest.mark.parametrize("stack", STACKS)
def test_aliases_follow_prefix_tier_purpose(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    keys = {k.name: k for k in record.of_type(KEY)}
    for purpose in PURPOSES:
        alias = record.one(ALIAS, f"keys-{purpose}-alias")
        assert alias.inputs["name"] == f"alias/visionrag-{stack}-{purpose}"
        assert alias.inputs["targetKeyId"] == keys[f"keys-{purpose}"].outputs["keyId"]


def test_logs_key_lets_cloudwatch_logs_of_this_account_and_region_use_it(records: dict[str, Record]) -> None:
    logs = records["prod"].one(KEY, "keys-logs")
    statement = _statement(_policy(logs), "CloudWatchLogsUse")
    assert statement["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert "kms:GenerateDataKey*" in statement["Action"] and "kms:Decrypt*" in statement["Action"]
    assert not any(a.startswith(("kms:Create", "kms:Put", "kms:Delete", "kms:Schedule")) for a in statement["Action"])
    assert statement["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"}
    }


def test_only_the_logs_and_ebs_keys_name_principals_beyond_the_root(records: dict[str, Record]) -> None:
    for key in records["prod"].of_type(KEY):
        if not key.name.startswith("keys-"):
            continue
        sids = {s.get("Sid") for s in _policy(key)["Statement"]}
        expected = {"AccountRootIsKeyAdmin"}
        if key.name == "keys-logs":
            expected.add("CloudWatchLogsUse")
        if key.name == "keys-ebs":
            expected |= {"AutoScalingServiceRoleUse", "AutoScalingServiceRoleGrantsForAwsResources"}
        assert sids == expected, key.name


def test_ebs_key_grants_only_for_aws_resources(records: dict[str, Record]) -> None:
    ebs = records["prod"].one(KEY, "keys-ebs")
    grants = _statement(_policy(ebs), "AutoScalingServiceRoleGrantsForAwsResources")
    assert grants["Action"] == "kms:CreateGrant"
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_key_arns_are_exported(records: dict[str, Record]) -> None:
    exported = records["prod"].outputs["kmsKeyArns"]
    assert set(exported) == set(PURPOSES)
    assert all(arn.startswith("arn:aws:kms:us-east-1:123456789012:key/") for arn in exported.values())


@pytest.mark.parametrize(
    ("field", "args"),
    [
        ("name_prefix", {"name_prefix": "Visionrag_Prod", "region": "us-east-1"}),
        ("name_prefix", {"name_prefix": "visionrag-", "region": "us-east-1"}),
        ("region", {"name_prefix": "visionrag-prod", "region": "useast1"}),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, args: dict[str, str]) -> None:
    def program(cfg: StackConfig) -> None:
        Keys("keys", KeysArgs(name_prefix=args["name_prefix"], region=args["region"], autoscaling_role_arn=_ASG_ROLE))

    with pytest.raises(ValueError, match=rf"^{field}: "):
        run_stack("dev", program=program)
