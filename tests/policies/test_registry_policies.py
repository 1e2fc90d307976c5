"""The registry policies in detail: ECR's documented lifecycle semantics (the User Guide's own examples), the
release-protection rule's verdicts, the repository-policy scope, the ownership knob, and the pack's copies of
infra/registry.py's contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.registry import CROSS_ACCOUNT_ACTIONS, RELEASE_STAGES, RELEASE_TAG_PREFIX, lifecycle_policy
from policies.ecr_lifecycle import Image, expired, pattern_matches, problems
from policies.evaluator import evaluate_plan
from policies.rules import BY_NAME, registry
from tests.policies.policy_plans import find, find_all

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def _rule(priority: int, status: str, count: int, *, prefixes: list[str] | None = None) -> dict[str, Any]:
    sel: dict[str, Any] = {"tagStatus": status, "countType": "imageCountMoreThan", "countNumber": count}
    if prefixes:
        sel["tagPrefixList"] = prefixes
    return {"rulePriority": priority, "selection": sel, "action": {"type": "expire"}}


_REPO = [
    Image("A", frozenset({"beta-1", "prod-1"}), NOW - timedelta(days=10)),
    Image("B", frozenset({"beta-2", "prod-2"}), NOW - timedelta(days=9)),
    Image("C", frozenset({"beta-3"}), NOW - timedelta(days=8)),
]


@pytest.mark.parametrize("earlier_matches_count", [True, False])
def test_user_guide_multiple_rules_examples(earlier_matches_count: bool) -> None:
    """Amazon ECR User Guide, "Examples of lifecycle policies", filtering on multiple rules, examples A and B."""
    a = {"rules": [_rule(1, "tagged", 1, prefixes=["prod"]), _rule(2, "tagged", 1, prefixes=["beta"])]}
    b = {"rules": [_rule(1, "tagged", 1, prefixes=["beta"]), _rule(2, "tagged", 1, prefixes=["prod"])]}
    assert expired(a, _REPO, NOW, earlier_matches_count=earlier_matches_count) == {"A"}
    assert expired(b, _REPO, NOW, earlier_matches_count=earlier_matches_count) == {"A", "B"}


def test_user_guide_multiple_tags_in_one_rule_must_all_match() -> None:
    images = [
        Image("A", frozenset({"alpha-1"}), NOW - timedelta(days=12)),
        Image("C", frozenset({"alpha-2", "beta-2"}), NOW - timedelta(days=10)),
        Image("F", frozenset({"alpha-4", "beta-4"}), NOW - timedelta(days=2)),
    ]
    rule = {
        "rulePriority": 1,
        "selection": {
            "tagStatus": "tagged",
            "tagPrefixList": ["alpha", "beta"],
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 5,
        },
        "action": {"type": "expire"},
    }
    assert expired({"rules": [rule]}, images, NOW) == {"C"}


def test_patterns_are_anchored_globs() -> None:
    assert pattern_matches("release-prod-*", "release-prod-20260101T000000Z.sig")
    assert not pattern_matches("release-prod-*", "xrelease-prod-1")
    assert not pattern_matches("release-dev-*", "release-prod-1")


def test_documented_constraints_are_refused() -> None:
    any_first = {"rules": [_rule(1, "any", 5), _rule(2, "tagged", 1, prefixes=["x"])]}
    assert any("highest rulePriority" in p for p in problems(any_first))
    two_untagged = {"rules": [_rule(1, "untagged", 1), _rule(2, "untagged", 2)]}
    assert any("untagged" in p for p in problems(two_untagged))
    assert problems(json.loads(lifecycle_policy({"dev": 1, "staging": 1, "prod": 1}, 1, 1))) == []
    # The User Guide's own wildcard example: at most four `*` per pattern.
    pattern = {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}
    ok = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {**pattern, "tagPatternList": ["*test*1*2*3", "test*1*2*3*"]},
                "action": {"type": "expire"},
            }
        ]
    }
    assert problems(ok) == []
    too_many = {"rules": [{**ok["rules"][0], "selection": {**pattern, "tagPatternList": ["test*1*2*3*4*5*6"]}}]}
    assert any("more than 4 wildcards" in p for p in problems(too_many))


def test_the_pack_copies_agree_with_infra_registry() -> None:
    assert registry.RELEASE_TAG_PREFIX_DEFAULT == RELEASE_TAG_PREFIX
    assert list(RELEASE_STAGES) == registry.RELEASE_STAGES_DEFAULT
    assert list(CROSS_ACCOUNT_ACTIONS) == registry.CROSS_ACCOUNT_ACTIONS_DEFAULT
    for name in ("ecr-registry-owner", "ecr-repository-policy-scoped", "ecr-lifecycle-protects-releases"):
        assert name in BY_NAME


def _lifecycle(plan: dict[str, Any], doc: dict[str, Any]) -> None:
    for p in find_all(plan, LIFECYCLE):
        p["inputs"]["policy"] = json.dumps(doc)


def _fired(judge: Any, plan: dict[str, Any]) -> list[str]:
    return [v.message for v in judge(plan, "dev") if v.policy == "ecr-lifecycle-protects-releases"]


def test_a_later_stage_with_a_smaller_window_is_flagged(plans: dict[str, Any], judge: Any) -> None:
    doc = json.loads(lifecycle_policy({"dev": 5, "staging": 5, "prod": 5}, 10, 7))
    doc["rules"][0]["selection"]["countNumber"] = 3  # prod rule (decides for dev/staging images too) keeps less
    _lifecycle(plans["dev"], doc)
    assert any("the prod rule keeps 3 images but the staging rule 20" in m for m in _fired(judge, plans["dev"]))


def test_dev_rule_first_is_flagged(plans: dict[str, Any], judge: Any) -> None:
    doc = json.loads(lifecycle_policy({"dev": 5, "staging": 5, "prod": 5}, 10, 7))
    rules = doc["rules"]
    rules[0]["rulePriority"], rules[2]["rulePriority"] = 3, 1  # dev first: it would decide for prod releases
    _lifecycle(plans["dev"], doc)
    assert any("not a rule for the release-prod-* tags" in m for m in _fired(judge, plans["dev"]))


def test_releases_expired_by_age_are_flagged(plans: dict[str, Any], judge: Any) -> None:
    doc = json.loads(lifecycle_policy({"dev": 5, "staging": 5, "prod": 5}, 10, 7))
    doc["rules"][0]["selection"].update(countType="sinceImagePushed", countUnit="days", countNumber=90)
    _lifecycle(plans["dev"], doc)
    assert any("by age (push time" in m for m in _fired(judge, plans["dev"]))


def test_the_program_policy_passes(plans: dict[str, Any], judge: Any) -> None:
    _lifecycle(plans["dev"], json.loads(lifecycle_policy({"dev": 1, "staging": 2, "prod": 300}, 1, 1)))
    assert _fired(judge, plans["dev"]) == []


@pytest.mark.parametrize(
    ("principal", "actions", "says"),
    [
        ({"AWS": "*"}, None, "any AWS account"),
        ({"AWS": ["arn:aws:iam::210987654321:root", "*"]}, None, "any AWS account"),
        ({"AWS": "arn:aws:iam::210987654321:root"}, ["ecr:*"], "go beyond pulling"),
        ({"AWS": "arn:aws:iam::210987654321:root"}, ["ecr:BatchGetImage", "ecr:PutImage"], "go beyond pulling"),
    ],
)
def test_repository_policy_scope(plans: dict[str, Any], judge: Any, principal: Any, actions: Any, says: str) -> None:
    pull = find(plans["dev"], "aws:ecr/repositoryPolicy:RepositoryPolicy", "visionrag-api-pull")["inputs"]
    doc = json.loads(pull["policy"])
    doc["Statement"][0]["Principal"] = principal
    if actions:
        doc["Statement"][0]["Action"] = actions
    pull["policy"] = json.dumps(doc)
    messages = [v.message for v in judge(plans["dev"], "dev") if v.policy == "ecr-repository-policy-scoped"]
    assert messages and all(says in m for m in messages)


def test_an_owner_without_repositories_is_flagged(plans: dict[str, Any], pack_configs: dict[str, Any]) -> None:
    plan = plans["prod"]  # no repositories: right for prod, wrong for a stack the pack says owns the registry
    config = {**pack_configs["prod"], "ecr-registry-owner": {"enforcementLevel": "mandatory", "owner": True}}
    fired = [v for v in evaluate_plan(plan, config) if v.policy == "ecr-registry-owner"]
    assert fired and "declares no ECR repository" in fired[0].message


def test_only_dev_owns_in_the_committed_pack_configs(pack_configs: dict[str, Any]) -> None:
    owners = [s for s, c in pack_configs.items() if c.get("ecr-registry-owner", {}).get("owner")]
    assert owners == ["dev"]  # the same stack as Pulumi.<stack>.yaml's visionrag:registry.owner
