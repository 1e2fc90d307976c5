"""The offline evaluator behaves like the engine: levels from the pack config, unknowns, not-applicable,
pulumi_policy's own argument objects, and clear errors for a bad pack config."""

from __future__ import annotations

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE

from policies.evaluator import (
    PackConfigError,
    Violation,
    evaluate,
    evaluate_plan,
    policy_resources,
    resolve_config,
    stack_pack_config,
)
from policies.rules import ALL_POLICIES, BY_NAME
from tests.policies.policy_plans import PlanBuilder, compliant_plan, find

# The two policies whose parameters are required (a budget has no sensible default).
REQUIRED = {"cost-monthly-budget": {"monthlyBudgetUsd": 10}, "cost-gpu-ceiling": {"maxGpuNodes": 0}}


def _kms_only(**inputs) -> dict:
    b = PlanBuilder("prod")
    b.add("aws:kms/key:Key", "k", {"enableKeyRotation": True, **inputs})
    return b.plan()


def test_violation_contract_shape() -> None:
    v = Violation("p", "mandatory", "m", None)
    assert v.to_dict() == {"policy": "p", "level": "mandatory", "message": "m", "urn": None}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("mandatory", ["mandatory"]),
        ("advisory", ["advisory"]),
        ({"enforcementLevel": "remediate"}, ["mandatory"]),
        ("disabled", []),
    ],
)
def test_enforcement_level_comes_from_pack_config(entry, expected) -> None:
    plan = _kms_only(enableKeyRotation=False)
    found = evaluate_plan(plan, {**REQUIRED, "kms-key-rotation": entry})
    assert [v.level for v in found if v.policy == "kms-key-rotation"] == expected


def test_all_key_then_policy_entry_precedence() -> None:
    plan = _kms_only(enableKeyRotation=False, deletionWindowInDays=3.0)
    found = evaluate_plan(
        plan,
        {
            "all": "advisory",
            "kms-deletion-window": "mandatory",
            "cost-monthly-budget": {"monthlyBudgetUsd": 10},
            "cost-gpu-ceiling": {"maxGpuNodes": 0},
        },
    )
    levels = {v.policy: v.level for v in found}
    assert levels == {"kms-key-rotation": "advisory", "kms-deletion-window": "mandatory"}


def test_policies_default_to_mandatory_without_config() -> None:
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in ALL_POLICIES)
    found = evaluate_plan(
        _kms_only(enableKeyRotation=False),
        {"cost-monthly-budget": {"monthlyBudgetUsd": 10}, "cost-gpu-ceiling": {"maxGpuNodes": 0}},
    )
    assert [(v.policy, v.level) for v in found] == [("kms-key-rotation", "mandatory")]


def test_unknown_value_is_advisory_cannot_check_in_preview() -> None:
    plan = _kms_only(enableKeyRotation=UNKNOWN_BOOLEAN_VALUE)
    found = [v for v in evaluate_plan(plan, stack_pack_config("prod")) if v.policy == "kms-key-rotation"]
    assert len(found) == 1
    assert found[0].level == "advisory"
    assert found[0].message.startswith("cannot check in preview: boolean value at .enableKeyRotation")


def test_unknown_id_does_not_stop_bucket_grouping(plan) -> None:
    # A real preview does not know a new bucket's id; siblings are still grouped by dependencies.
    for r in plan["resources"]:
        if r["type"].startswith("aws:s3/bucket") and r["type"] != "aws:s3/bucket:Bucket":
            r["inputs"]["bucket"] = UNKNOWN_STRING_VALUE
            r["outputs"] = {}
    assert evaluate_plan(plan, stack_pack_config("prod")) == []


def test_not_applicable_is_recorded_not_reported() -> None:
    plan = _kms_only(customerMasterKeySpec="RSA_2048", keyUsage="SIGN_VERIFY", enableKeyRotation=False)
    result = evaluate(plan, stack_pack_config("prod"))
    assert result.violations == []
    assert [(p, reason) for p, _, reason in result.not_applicable] == [
        ("kms-key-rotation", "AWS rotates only symmetric encryption keys")
    ]


def test_secret_placeholder_passes_secret_checks(plan, judge) -> None:
    assert find(plan, "aws:elasticache/replicationGroup:ReplicationGroup")["inputs"]["authToken"] == "[secret]"
    assert judge(plan) == []


def test_validators_receive_pulumi_policy_argument_objects(monkeypatch) -> None:
    seen: dict[str, object] = {}
    resource_policy = BY_NAME["kms-key-rotation"]
    stack_policy = BY_NAME["s3-versioning"]

    def spy_resource(args, report):
        seen["resource"] = args
        seen["config"] = dict(args.get_config())

    def spy_stack(args, report):
        seen["stack"] = args

    monkeypatch.setattr(resource_policy, "_ResourceValidationPolicy__validate", spy_resource)
    monkeypatch.setattr(stack_policy, "_StackValidationPolicy__validate", spy_stack)
    evaluate_plan(
        _kms_only(),
        {
            "kms-key-rotation": "mandatory",
            "s3-versioning": "mandatory",
            "cost-monthly-budget": {"monthlyBudgetUsd": 1},
            "cost-gpu-ceiling": {"maxGpuNodes": 0},
        },
    )
    assert isinstance(seen["resource"], ResourceValidationArgs)
    assert seen["resource"].props["enableKeyRotation"] is True
    assert isinstance(seen["stack"], StackValidationArgs)
    assert [r.resource_type for r in seen["stack"].resources] == ["aws:kms/key:Key"]


def test_links_parent_dependencies_and_rebuilt_property_dependencies() -> None:
    resources = {r.name: r for r in policy_resources(compliant_plan("prod"))}
    logging = resources["visionrag-prod-pages-logging"]
    assert logging.parent is resources["storage"]
    assert {d.name for d in logging.dependencies} == {"visionrag-prod-pages", "visionrag-prod-access-logs"}
    assert [d.name for d in logging.property_dependencies["bucket"]] == ["visionrag-prod-pages"]
    assert [d.name for d in logging.property_dependencies["targetBucket"]] == ["visionrag-prod-access-logs"]


def test_schema_defaults_reach_the_validator() -> None:
    resolved = resolve_config(REQUIRED)
    assert resolved["kms-deletion-window"].config["minDeletionWindowDays"] == 7
    assert resolved["s3-replication"].config["replicatedBuckets"] == ["pages", "snapshots"]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"s3-versionning": "mandatory"}, "unknown policies ['s3-versionning']"),
        ({"s3-versioning": "blocking"}, "'blocking' is not one of ['advisory', 'mandatory', 'remediate', 'disabled']"),
        ({"kms-deletion-window": {"minDeletionWindowDays": 3}}, "kms-deletion-window.minDeletionWindowDays"),
        ({"eks-endpoint-private": {"allowPublicEndpont": True}}, "unknown parameters ['allowPublicEndpont']"),
        ({"cost-monthly-budget": {"enforcementLevel": "mandatory"}}, "'monthlyBudgetUsd' is a required property"),
        ({"s3-lifecycle": 3}, "expected an enforcement level or an object"),
    ],
)
def test_bad_pack_config_names_key_and_value(config, fragment) -> None:
    with pytest.raises(PackConfigError) as e:
        resolve_config(
            {"cost-monthly-budget": {"monthlyBudgetUsd": 1}, "cost-gpu-ceiling": {"maxGpuNodes": 0}, **config}
        )
    assert fragment in str(e.value)


def test_unknown_stack_pack_config() -> None:
    with pytest.raises(PackConfigError, match="known stacks: \\['dev', 'prod', 'staging'\\]"):
        stack_pack_config("qa")


def _unknown_arns(value):
    if isinstance(value, dict):
        return {k: _unknown_arns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknown_arns(v) for v in value]
    if isinstance(value, str) and "arn:aws:" in value:  # ARNs, and policy documents built from them
        return UNKNOWN_STRING_VALUE
    return value


def test_first_preview_with_unknown_arns_has_no_mandatory_violation(plan) -> None:
    # In a first `pulumi preview` every ARN of a resource being created is unknown. A key reference that is
    # unknown will be set, so "uses a customer key" holds; a bucket policy whose ARNs are unknown cannot be read,
    # which is advisory, never a block and never a silent pass.
    for r in plan["resources"]:
        r["inputs"] = _unknown_arns(r["inputs"])
        r["outputs"] = {}
    found = evaluate_plan(plan, stack_pack_config("prod"))
    assert [v for v in found if v.level == "mandatory"] == []
    assert found, "the bucket policies' unknown documents must be reported as not checkable"
    assert all(v.message.startswith("cannot check in preview") for v in found)


def test_one_unknown_bucket_does_not_hide_another_buckets_violation(plan) -> None:
    for r in plan["resources"]:
        if r["type"] == "aws:s3/bucketPolicy:BucketPolicy" and r["name"].endswith("-models-policy"):
            r["inputs"]["policy"] = UNKNOWN_STRING_VALUE
        if r["type"] == "aws:s3/bucketPolicy:BucketPolicy" and r["name"].endswith("-pages-policy"):
            r["inputs"]["policy"] = '{"Statement": []}'
    found = [
        (v.policy, v.level, (v.urn or "").rsplit("::", 1)[-1]) for v in evaluate_plan(plan, stack_pack_config("prod"))
    ]
    assert ("s3-tls-only", "mandatory", "visionrag-prod-pages") in found
    assert ("s3-tls-only", "advisory", "") in found


def test_siblings_grouped_by_shared_parent_when_nothing_else_links_them() -> None:
    b = PlanBuilder()
    for role in ("pages", "audit"):
        parent = b.add("visionrag:infra:SecureBucket", role, {})
        b.add("aws:s3/bucket:Bucket", f"{role}-bucket", {"bucket": f"visionrag-prod-{role}"}, parent=parent)
        flags = dict.fromkeys(
            ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), role == "pages"
        )
        b.add(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{role}-pab",
            {"bucket": UNKNOWN_STRING_VALUE, **flags},
            parent=parent,
        )
    config = {"all": "disabled", "s3-public-access-block": "mandatory"}
    found = evaluate_plan(b.plan(), config)
    assert [(v.urn or "").rsplit("::", 1)[-1] for v in found] == ["audit-bucket"]
