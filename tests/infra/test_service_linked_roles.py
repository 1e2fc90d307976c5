"""Service-linked roles: no KMS key policy names a service-linked role the stack neither creates nor looks up.

KMS refuses a key policy whose principal does not exist (MalformedPolicyDocumentException). A fresh account has no
AWSServiceRoleForAutoScaling until its first Auto Scaling group, which comes after the EBS key: the stack must
create the role (and the key must wait for it), or, where the account already has it, prove it exists by a lookup
that fails the preview when it does not.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.service_linked_roles import AUTOSCALING, ROLE_NAMES, ServiceLinkedRoles, ServiceLinkedRolesArgs
from stacks.config import ConfigError, StackConfig
from stacks.engine.offline import Record, run_stack
from tests.infra.platform_graph import STACKS

SLR = "aws:iam/serviceLinkedRole:ServiceLinkedRole"
GET_ROLE = "aws:iam/getRole:getRole"
_SLR_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/aws-service-role/(?P<service>[^/]+)/(?P<name>[^/]+)$")
PREEXISTING = {"visionrag:cluster": {"createServiceLinkedRoles": False}}


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return []
    ids = principal.get("AWS", [])
    return ids if isinstance(ids, list) else [ids]


def unaccounted_service_linked_roles(record: Record) -> list[str]:
    """Every SLR ARN named by a key policy that is neither a created role the key waits for nor looked up."""
    created = {r.outputs["arn"]: r.urn for r in record.of_type(SLR)}
    looked_up = {
        ROLE_NAMES.get(service, ""): service
        for service in ROLE_NAMES
        for token, args in record.invokes
        if token == GET_ROLE and args.get("name") == ROLE_NAMES[service]
    }
    problems = []
    for key in record.of_type("aws:kms/key:Key"):
        for statement in json.loads(key.inputs["policy"])["Statement"]:
            for arn in _principals(statement):
                match = _SLR_ARN.match(arn)
                if match is None:
                    continue
                if arn in created and created[arn] in key.dependencies:
                    continue
                if match["name"] in looked_up:
                    continue
                problems.append(f"{key.name}: {arn}")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_key_policies_name_only_service_linked_roles_the_stack_creates(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    assert record.config.cluster.create_service_linked_roles is True  # the tier default: fresh accounts work
    (role,) = record.of_type(SLR)
    assert role.inputs["awsServiceName"] == AUTOSCALING
    ebs = record.one("aws:kms/key:Key", "keys-ebs")
    assert role.outputs["arn"] in ebs.inputs["policy"]
    assert role.urn in ebs.dependencies, "KMS must see the role before the EBS key policy names it"
    assert unaccounted_service_linked_roles(record) == []


def test_an_account_that_has_the_roles_looks_them_up_instead(record_of: Any) -> None:
    record = record_of("dev", overrides=PREEXISTING)
    assert record.of_type(SLR) == []
    assert (GET_ROLE, {"name": "AWSServiceRoleForAutoScaling"}) in [(t, dict(a)) for t, a in record.invokes]
    ebs = record.one("aws:kms/key:Key", "keys-ebs")
    assert "AWSServiceRoleForAutoScaling" in ebs.inputs["policy"]
    assert unaccounted_service_linked_roles(record) == []


def test_the_guard_catches_a_hand_built_role_arn() -> None:
    # The shape of the original defect: an ARN string in the key policy, no role and no lookup behind it.
    def program(cfg: StackConfig) -> None:
        import pulumi_aws as aws

        arn = "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "kms:Decrypt", "Resource": "*"}],
        }
        aws.kms.Key("keys-ebs", policy=json.dumps(policy))

    (problem,) = unaccounted_service_linked_roles(run_stack("dev", program=program))
    assert problem.startswith("keys-ebs: ") and problem.endswith("/AWSServiceRoleForAutoScaling")


def test_config_switch_is_a_boolean_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.createServiceLinkedRoles"):
        run_stack("dev", overrides={"visionrag:cluster": {"createServiceLinkedRoles": "sometimes"}})


def test_args_refuse_unknown_services() -> None:
    def program(cfg: StackConfig) -> None:
        ServiceLinkedRoles("slr", ServiceLinkedRolesArgs(create=True, services=("spot.amazonaws.com",)))

    with pytest.raises(ValueError, match=r"^services: "):
        run_stack("dev", program=program)
