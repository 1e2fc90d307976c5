"""Preflight's shared-registry check: the account a stack deploys to (the caller's) may pull from the registry,
because it is the registry's account or the committed owner stack lists it in registry.pullAccountIds."""

from __future__ import annotations

from stacks.config import StackConfig
from stacks.verify.preflight import registry_owner
from stacks.verify.preflight_checks import check_registry_pull

REGISTRY = "123456789012"
TIER = "210987654321"


def _owner(pull: list[str]) -> tuple[str, StackConfig]:
    found = registry_owner()
    assert found is not None and found[0] == "dev"  # the committed owner
    stack, cfg = found
    return stack, cfg.model_copy(update={"registry": cfg.registry.model_copy(update={"pull_account_ids": pull})})


def test_the_committed_owner_is_found() -> None:
    found = registry_owner()
    assert found is not None and found[0] == "dev" and found[1].registry.owner


def test_the_registry_account_itself_passes_without_reading_the_owner() -> None:
    def unread() -> None:
        raise AssertionError("the owner's config is not needed for a same-account pull")

    (r,) = check_registry_pull(REGISTRY, "prod", REGISTRY, unread)
    assert r.ok and r.area == "registry" and "same account" in r.detail


def test_another_account_the_owner_does_not_list_fails_naming_the_key() -> None:
    (r,) = check_registry_pull(TIER, "prod", REGISTRY, lambda: _owner([]))
    assert not r.ok
    assert r.detail.startswith(f"registry.pullAccountIds: Pulumi.dev.yaml (the registry owner) does not list {TIER}")
    assert "stack 'prod'" in r.detail and f"add '{TIER}'" in r.detail


def test_another_account_the_owner_lists_passes() -> None:
    (r,) = check_registry_pull(TIER, "prod", REGISTRY, lambda: _owner([TIER]))
    assert r.ok and "pullAccountIds of Pulumi.dev.yaml" in r.detail


def test_no_owner_at_all_fails_naming_the_key() -> None:
    (r,) = check_registry_pull(TIER, "prod", REGISTRY, lambda: None)
    assert not r.ok and r.detail.startswith("registry.owner: no committed")
