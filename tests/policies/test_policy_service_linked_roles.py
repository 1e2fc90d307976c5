"""kms-service-linked-roles-exist: a key policy naming a service-linked role the stack neither creates (first)
nor declares present is refused, as KMS would refuse it on a fresh account (MalformedPolicyDocumentException)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.service_linked_roles import AUTOSCALING
from policies.evaluator import evaluate_plan, stack_pack_config
from stacks.engine.offline import Record

POLICY = "kms-service-linked-roles-exist"
SLR = "aws:iam/serviceLinkedRole:ServiceLinkedRole"
STACKS = ("dev", "staging", "prod")


def _fired(plan: dict[str, Any], config: dict[str, Any]) -> list[str]:
    return [v.message for v in evaluate_plan(plan, config) if v.policy == POLICY and v.level == "mandatory"]


def _dev_plan(records: dict[str, Record]) -> dict[str, Any]:
    return copy.deepcopy(records["dev"].to_plan())


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_create_what_their_key_policies_name(records: dict[str, Record], stack: str) -> None:
    assert _fired(records[stack].to_plan(), stack_pack_config(stack)) == []


def test_a_key_policy_naming_a_role_nobody_creates_is_refused(records: dict[str, Record]) -> None:
    # The original defect: the role ARN written into the policy, nothing creating the role.
    plan = _dev_plan(records)
    (role,) = [r for r in plan["resources"] if r["type"] == SLR]
    plan["resources"].remove(role)
    for r in plan["resources"]:
        r["dependencies"] = [d for d in r.get("dependencies", []) if d != role["urn"]]
    (message,) = _fired(plan, stack_pack_config("dev"))
    assert "keys-ebs" in message and "AWSServiceRoleForAutoScaling" in message


def test_a_key_that_does_not_wait_for_the_role_is_refused(records: dict[str, Record]) -> None:
    plan = _dev_plan(records)
    (role,) = [r for r in plan["resources"] if r["type"] == SLR]
    (ebs,) = [r for r in plan["resources"] if r["name"] == "keys-ebs"]
    ebs["dependencies"] = [d for d in ebs["dependencies"] if d != role["urn"]]
    (message,) = _fired(plan, stack_pack_config("dev"))
    assert "does not depend" in message


def test_an_account_with_the_role_declares_it_in_the_pack_config(record_of: Any) -> None:
    plan = record_of("dev", overrides={"visionrag:cluster": {"createServiceLinkedRoles": False}}).to_plan()
    config = stack_pack_config("dev")
    assert len(_fired(plan, config)) == 1  # looked up, but not declared: refused
    declared = {**config, POLICY: {**config[POLICY], "preexistingServiceLinkedRoles": [AUTOSCALING]}}
    assert _fired(plan, declared) == []


@pytest.mark.parametrize("stack", STACKS)
def test_pack_config_declares_exactly_the_roles_the_stack_does_not_create(
    records: dict[str, Record], stack: str
) -> None:
    declared = stack_pack_config(stack)[POLICY].get("preexistingServiceLinkedRoles", [])
    created = records[stack].config.cluster.create_service_linked_roles
    assert (AUTOSCALING in declared) is (not created)
