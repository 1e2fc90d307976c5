"""k8s-image-admission-enforced on the real staging/prod records, and on each way to break admission."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policies.evaluator import evaluate_plan
from stacks.engine.offline import Record
from tests.infra.workloads.platform_stub import record_workloads

POLICY = "k8s-image-admission-enforced"
CIP = "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy"
ONLY = {"all": "disabled", POLICY: {"enforcementLevel": "mandatory"}}


def _messages(plan: dict[str, Any]) -> list[str]:
    return [v.message for v in evaluate_plan(plan, ONLY) if v.policy == POLICY]


def _resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return plan["resources"]


def _of(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in _resources(plan) if r.get("type") == type_]


def _inputs(r: dict[str, Any]) -> dict[str, Any]:
    return r["inputs"]


@pytest.fixture(scope="module")
def wl_records() -> dict[str, Record]:
    return {s: record_workloads(s) for s in ("dev", "staging", "prod")}


@pytest.fixture(scope="module")
def prod_plan(wl_records: dict[str, Record]) -> dict[str, Any]:
    return wl_records["prod"].to_plan()


def _cip(plan: dict[str, Any], suffix: str) -> dict[str, Any]:
    return next(r for r in _of(plan, CIP) if _inputs(r)["metadata"]["name"].endswith(suffix))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_real_stacks_pass(wl_records: dict[str, Record], stack: str) -> None:
    assert _messages(wl_records[stack].to_plan()) == []


def test_dev_has_no_controller_and_would_fail(wl_records: dict[str, Record]) -> None:
    # dev's pack config disables the rule (tier dev runs tags); mandatory, it names what is missing.
    assert any("no sigstore policy-controller" in m for m in _messages(wl_records["dev"].to_plan()))


def test_missing_signed_policy_leaves_project_images_uncovered(prod_plan: dict[str, Any]) -> None:
    plan = copy.deepcopy(prod_plan)
    _resources(plan).remove(_cip(plan, "-ci-signed"))
    msgs = _messages(plan)
    assert any("visionrag-api@sha256" in m and "covered by no ClusterImagePolicy" in m for m in msgs)


def test_a_glob_missing_one_repository_is_caught(prod_plan: dict[str, Any]) -> None:
    plan = copy.deepcopy(prod_plan)
    spec = _inputs(_cip(plan, "-ci-signed"))["spec"]
    spec["images"] = [i for i in spec["images"] if "-embedder@" not in i["glob"]]
    msgs = _messages(plan)
    assert len(msgs) == 1 and "visionrag-embedder@sha256" in msgs[0]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("issuer", "https://accounts.google.com", "is not 'https://token.actions.githubusercontent.com'"),
        (
            "subject",
            "https://github.com/example-org/visionrag/.github/workflows/ci.yml@refs/heads/dev",
            "does not match",
        ),
        ("subjectRegExp", ".*", "subjectRegExp"),
    ],
)
def test_wrong_signer_identity_is_caught(prod_plan: dict[str, Any], field: str, value: str, expected: str) -> None:
    plan = copy.deepcopy(prod_plan)
    ident = _inputs(_cip(plan, "-ci-signed"))["spec"]["authorities"][0]["keyless"]["identities"][0]
    ident[field] = value
    msgs = _messages(plan)
    assert any(expected in m for m in msgs), msgs


def test_a_wildcard_static_pass_is_refused(prod_plan: dict[str, Any]) -> None:
    plan = copy.deepcopy(prod_plan)
    spec = _inputs(_cip(plan, "-third-party-pinned"))["spec"]
    spec["images"] = [{"glob": "index.docker.io/**"}]
    msgs = _messages(plan)
    assert any("static pass must name single digests" in m for m in msgs)
    assert any("qdrant" in m and "covered by no ClusterImagePolicy" in m for m in msgs)


def test_warn_mode_and_fail_open_webhook_are_caught(prod_plan: dict[str, Any]) -> None:
    plan = copy.deepcopy(prod_plan)
    _inputs(_cip(plan, "-ci-signed"))["spec"]["mode"] = "warn"
    release = next(r for r in _of(plan, "kubernetes:helm.sh/v3:Release") if _inputs(r)["chart"] == "policy-controller")
    _inputs(release)["values"]["webhook"]["failurePolicy"] = "Ignore"
    _inputs(release)["values"]["webhook"]["configData"]["no-match-policy"] = "allow"
    msgs = " | ".join(_messages(plan))
    assert "only warns" in msgs and "fail closed" in msgs and "no-match-policy is not 'deny'" in msgs


def test_namespace_without_the_opt_in_label_is_caught(prod_plan: dict[str, Any]) -> None:
    plan = copy.deepcopy(prod_plan)
    for ns in _of(plan, "kubernetes:core/v1:Namespace"):
        _inputs(ns)["metadata"]["labels"].pop("policy.sigstore.dev/include", None)
    assert any("not labelled policy.sigstore.dev/include=true" in m for m in _messages(plan))


def test_a_plan_without_pods_needs_no_controller(prod_plan: dict[str, Any]) -> None:
    plan = copy.deepcopy(prod_plan)
    pods = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:CronJob")
    plan["resources"] = [
        r
        for r in plan["resources"]
        if r["type"] not in pods
        and not (r["type"] == "kubernetes:helm.sh/v3:Release" and r["inputs"]["chart"] == "policy-controller")
    ]
    assert _messages(plan) == []
