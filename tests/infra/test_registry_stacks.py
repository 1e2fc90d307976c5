"""The three committed stack files describe ONE shared registry: exactly one owner, and every other stack's
project images point at the owner's account, region and repositories (docs/delivery.md, "Registry model")."""

from __future__ import annotations

from stacks.config import StackConfig, load_stack_config
from stacks.config.registry import IMAGE_OF_WORKLOAD, pull_problem, stack_account
from stacks.engine.offline import read_stack_file

STACKS = ("dev", "staging", "prod")


def _configs() -> dict[str, StackConfig]:
    out = {}
    for stack in STACKS:
        values = {k.split(":", 1)[1]: v for k, v in read_stack_file(stack).items() if k.startswith("visionrag:")}
        out[stack] = load_stack_config(stack, values)
    return out


def test_exactly_one_committed_stack_owns_the_registry() -> None:
    owners = [s for s, cfg in _configs().items() if cfg.registry.owner]
    assert owners == ["dev"]  # CI pushes to the registry before any stage deploys


def test_every_stack_pulls_the_owners_repositories() -> None:
    configs = _configs()
    owner = configs["dev"]
    host = f"{owner.registry.account_id}.dkr.ecr.{owner.registry.region or owner.region}.amazonaws.com"
    for stack, cfg in configs.items():
        assert (cfg.registry.account_id, cfg.registry.region or cfg.region) == (
            owner.registry.account_id,
            owner.registry.region or owner.region,
        ), stack
        assert cfg.name_prefix == owner.name_prefix, stack
        for workload, image in IMAGE_OF_WORKLOAD.items():
            spec = getattr(cfg.workloads, workload)
            if spec is None:
                continue
            repo = f"{host}/{owner.name_prefix}-{image}"
            assert spec.image.startswith((f"{repo}:", f"{repo}@sha256:")), f"{stack} {workload}: {spec.image}"


def test_only_the_owner_lists_pull_accounts() -> None:
    assert all(not cfg.registry.pull_account_ids for s, cfg in _configs().items() if s != "dev")


def _owner(configs: dict[str, StackConfig]) -> tuple[str, StackConfig]:
    (owner,) = [(s, cfg) for s, cfg in configs.items() if cfg.registry.owner]
    return owner


def test_every_committed_tier_account_may_pull_from_the_registry() -> None:
    """A tier whose account (from its own config) differs from the registry's must be in the owner's
    registry.pullAccountIds, or its nodes cannot pull; the committed tiers name their accounts."""
    configs = _configs()
    owner_stack, owner = _owner(configs)
    checked = 0
    for stack, cfg in configs.items():
        found = stack_account(cfg)
        if stack == owner_stack or found is None:
            continue
        account, source = found
        assert pull_problem(account, source, stack, owner_stack, owner) is None, stack
        checked += 1
    assert checked == 2  # staging and prod both name their account (cluster.deployRoleArn)


def test_a_tier_in_another_account_must_be_listed_by_the_owner() -> None:
    configs = _configs()
    owner_stack, owner = _owner(configs)
    other = "210987654321"
    prod = configs["prod"]
    moved = prod.model_copy(
        update={"cluster": prod.cluster.model_copy(update={"deploy_role_arn": f"arn:aws:iam::{other}:role/deploy"})}
    )
    assert stack_account(moved) == (other, "cluster.deployRoleArn")
    problem = pull_problem(*stack_account(moved) or ("", ""), "prod", owner_stack, owner)
    assert problem is not None
    assert problem.startswith(
        "registry.pullAccountIds: Pulumi.dev.yaml (the registry owner) does not list 210987654321"
    )
    assert "cluster.deployRoleArn" in problem and "add '210987654321'" in problem
    listed = owner.model_copy(update={"registry": owner.registry.model_copy(update={"pull_account_ids": [other]})})
    assert pull_problem(other, "cluster.deployRoleArn", "prod", owner_stack, listed) is None


def test_the_account_is_read_from_the_stacks_own_arns_in_order() -> None:
    prod = _configs()["prod"]
    assert stack_account(prod) == ("123456789012", "cluster.deployRoleArn")
    no_roles = prod.model_copy(
        update={"cluster": prod.cluster.model_copy(update={"deploy_role_arn": None, "preview_role_arn": None})}
    )
    assert stack_account(no_roles) == ("123456789012", "delivery.codeConnectionArn")
    bare = no_roles.model_copy(update={"delivery": no_roles.delivery.model_copy(update={"code_connection_arn": None})})
    assert stack_account(bare) is None  # a personal stack: its caller decides (preflight checks that)
