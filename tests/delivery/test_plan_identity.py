"""A plan must not depend on who computes it: CI previews with the read-only role and applies that saved plan
with the deploy role (`pulumi up --plan` rejects any difference), so nothing the program registers may be
derived from the caller identity. And the preview role must never become cluster admin.

Each test runs the real program twice, answering `getCallerIdentity` as a session of the deploy role and then of
the preview role (stacks/engine/mocks.py answers the invoke; the test swaps that one answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.cluster import CLUSTER_ADMIN_POLICY, CLUSTER_VIEW_POLICY
from stacks.config import ConfigError
from stacks.engine import mocks
from stacks.engine.offline import Record, run_stack

CALLER = "aws:index/getCallerIdentity:getCallerIdentity"
SECRETS = {"visionrag:llmApiKey": "sk-plan-identity-test"}
ASSOC = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"


def _run_as(monkeypatch: pytest.MonkeyPatch, role: str, stack: str, overrides: dict[str, Any] | None = None) -> Record:
    def caller(args: dict[str, Any], m: mocks.RecordingMocks) -> dict[str, Any]:
        arn = f"arn:aws:sts::{mocks.ACCOUNT_ID}:assumed-role/{role}/gha-{stack}"
        return {"accountId": mocks.ACCOUNT_ID, "arn": arn, "userId": f"AROA:{role}", "id": mocks.ACCOUNT_ID}

    monkeypatch.setitem(mocks.INVOKES, CALLER, caller)
    return run_stack(stack, overrides=overrides, secrets=SECRETS)


def _registrations(record: Record) -> list[tuple[str, Any]]:
    return [(r.urn, r.inputs) for r in sorted(record.resources, key=lambda r: r.urn)]


def _access(record: Record) -> dict[str, str]:
    return {a.inputs["principalArn"]: a.inputs["policyArn"] for a in record.of_type(ASSOC)}


@pytest.fixture(params=["staging", "prod"])
def ci_stack(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.param)


def test_plan_is_the_same_whoever_computes_it(monkeypatch: pytest.MonkeyPatch, ci_stack: str) -> None:
    as_deployer = _run_as(monkeypatch, f"visionrag-{ci_stack}-deploy", ci_stack)
    as_previewer = _run_as(monkeypatch, f"visionrag-{ci_stack}-preview", ci_stack)
    assert _access(as_deployer) == _access(as_previewer)
    assert _registrations(as_deployer) == _registrations(as_previewer)


def test_the_preview_role_is_read_only_and_the_deploy_role_admin(
    monkeypatch: pytest.MonkeyPatch, ci_stack: str
) -> None:
    record = _run_as(monkeypatch, f"visionrag-{ci_stack}-preview", ci_stack)
    cc = record.config.cluster
    assert cc.deploy_role_arn and cc.preview_role_arn
    access = _access(record)
    assert access[cc.deploy_role_arn] == CLUSTER_ADMIN_POLICY
    assert access[cc.preview_role_arn] == CLUSTER_VIEW_POLICY
    admins = {p for p, policy in access.items() if policy == CLUSTER_ADMIN_POLICY}
    assert cc.preview_role_arn not in admins


def test_dev_with_a_deploy_role_is_independent_of_the_caller_too(monkeypatch: pytest.MonkeyPatch) -> None:
    roles = {"deployRoleArn": "arn:aws:iam::123456789012:role/visionrag-dev-deploy"}
    overrides = {"visionrag:cluster": roles}
    a = _run_as(monkeypatch, "visionrag-dev-deploy", "dev", overrides)
    b = _run_as(monkeypatch, "someone-elses-sso-role", "dev", overrides)
    assert _registrations(a) == _registrations(b)


def test_the_guard_sees_a_caller_derived_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    # dev without deployRoleArn still follows the caller (a personal stack): the comparison above must see that.
    a = _run_as(monkeypatch, "alice", "dev")
    b = _run_as(monkeypatch, "bob", "dev")
    assert _access(a) != _access(b)
    assert _registrations(a) != _registrations(b)


@pytest.mark.parametrize("key", ["deployRoleArn", "previewRoleArn"])
def test_ci_roles_are_required_outside_dev(key: str) -> None:
    roles = {
        "deployRoleArn": "arn:aws:iam::123456789012:role/visionrag-staging-deploy",
        "previewRoleArn": "arn:aws:iam::123456789012:role/visionrag-staging-preview",
    }
    # The stack file sets both; replacing them by "" (the CLI's "unset") must fail naming the key.
    with pytest.raises(ConfigError) as err:
        run_stack("staging", overrides={"visionrag:cluster": {**roles, key: None}}, secrets=SECRETS)
    assert f"visionrag:cluster.{key}" in str(err.value)


def test_ci_role_arns_are_validated_and_distinct() -> None:
    bad = {"deployRoleArn": "arn:aws:iam::123456789012:user/deployer"}
    with pytest.raises(ConfigError, match=r"cluster\.deployRoleArn.*not an IAM role ARN"):
        run_stack("staging", overrides={"visionrag:cluster": bad}, secrets=SECRETS)
    same = "arn:aws:iam::123456789012:role/visionrag-staging-deploy"
    with pytest.raises(ConfigError, match=r"previewRoleArn: must differ"):
        run_stack("staging", overrides={"visionrag:cluster": {"previewRoleArn": same}}, secrets=SECRETS)
