"""Registry: one shared set of repositories, built by the owner stack only, retained, pull-scoped, and refused
config that would point a tier at anything else (docs/delivery.md, "Registry model")."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

import infra.registry as registry_module
from infra.registry import IMAGES, Registry, RegistryArgs, lifecycle_policy
from stacks.config import ConfigError, StackConfig
from stacks.engine.offline import Record, RecordedResource, run_stack

REPO = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
PULL = "aws:ecr/repositoryPolicy:RepositoryPolicy"
HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
TIER_ACCOUNT = "210987654321"


def _children(record: Record, type_: str) -> dict[str, RecordedResource]:
    (component,) = [r for r in record.resources if r.type == "visionrag:infra:Registry"]
    return {r.name: r for r in record.of_type(type_) if r.parent == component.urn}


def test_the_owner_builds_one_hardened_repository_per_image(records: dict[str, Record]) -> None:
    record = records["dev"]
    assert record.config.registry.owner
    repos = _children(record, REPO)
    assert set(repos) == {f"registry-{i}" for i in ("api", "worker", "embedder", "frontend")}
    key = record.one("aws:kms/key:Key", "registry-key")
    assert key.inputs["enableKeyRotation"] is True
    for image in IMAGES:
        repo = repos[f"registry-{image}"].inputs
        assert repo["name"] == f"visionrag-{image}"  # no tier: every tier pulls this one
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        # The registry's own key, not the owner tier's: destroying dev must not take the images' key with it.
        assert repo["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key.outputs["arn"]}]
        assert repo["forceDelete"] is False
    assert record.outputs["ecrRepositoryUrls"] == {i: f"{HOST}/visionrag-{i}" for i in IMAGES}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_non_owners_build_no_repository_and_pull_the_owners(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    assert not record.config.registry.owner
    assert record.of_type(REPO) == [] and record.of_type(LIFECYCLE) == [] and record.of_type(PULL) == []
    assert [r for r in record.resources if r.type == "visionrag:infra:Registry"] == []
    assert "ecrRepositoryUrls" not in record.outputs
    dev_urls = records["dev"].outputs["ecrRepositoryUrls"]
    w = record.config.workloads
    for workload, image in (("api", "api"), ("worker", "worker"), ("embedder", "embedder"), ("snapshots", "worker")):
        assert getattr(w, workload).image.startswith(f"{dev_urls[image]}@sha256:")


def test_every_registry_resource_is_retained_on_destroy(monkeypatch: pytest.MonkeyPatch) -> None:
    """pulumi's mocks do not record resource options: spy on the constructors instead."""
    seen: dict[str, pulumi.ResourceOptions | None] = {}

    def spy(cls: type) -> type:
        class Spy(cls):  # type: ignore[misc, valid-type]
            def __init__(
                self, resource_name: str, *args: Any, opts: pulumi.ResourceOptions | None = None, **kw: Any
            ) -> None:
                seen[resource_name] = opts
                super().__init__(resource_name, *args, opts=opts, **kw)

        return Spy

    for attr in ("Repository", "LifecyclePolicy", "RepositoryPolicy"):
        monkeypatch.setattr(registry_module.aws.ecr, attr, spy(getattr(registry_module.aws.ecr, attr)))
    for attr in ("Key", "Alias"):  # the alias is built by infra.keys.customer_managed_key with the same opts
        monkeypatch.setattr(registry_module.aws.kms, attr, spy(getattr(registry_module.aws.kms, attr)))

    def program(cfg: StackConfig) -> None:
        Registry("registry", RegistryArgs(**{**_GOOD, "pull_account_ids": [TIER_ACCOUNT]}))

    run_stack("dev", program=program)
    assert set(seen) == {
        "registry-key",
        "registry-key-alias",
        *(f"registry-{i}{s}" for i in IMAGES for s in ("", "-lifecycle", "-pull")),
    }
    assert all(opts is not None and opts.retain_on_delete is True for opts in seen.values()), seen


def test_pull_accounts_get_a_pull_only_repository_policy(record_of: Any) -> None:
    record = record_of("dev", overrides={"visionrag:registry": {"pullAccountIds": [TIER_ACCOUNT]}})
    policies = _children(record, PULL)
    assert set(policies) == {f"registry-{i}-pull" for i in IMAGES}
    doc = json.loads(policies["registry-api-pull"].inputs["policy"])
    (statement,) = doc["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{TIER_ACCOUNT}:root"}
    assert sorted(statement["Action"]) == sorted(
        ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
    )
    assert "Resource" not in statement  # a repository policy applies to its repository


def test_every_repository_has_the_configured_lifecycle(records: dict[str, Record]) -> None:
    record = records["dev"]
    repos = _children(record, REPO)
    cfg = record.config.registry
    expected = json.loads(lifecycle_policy(cfg.keep_releases, cfg.keep_builds, cfg.untagged_expiry_days))
    for image in IMAGES:
        policy = _children(record, LIFECYCLE)[f"registry-{image}-lifecycle"]
        assert policy.inputs["repository"] == repos[f"registry-{image}"].outputs["name"]
        assert json.loads(policy.inputs["policy"]) == expected


def test_lifecycle_follows_config_overrides(record_of: Any) -> None:
    keep = {"dev": 3, "staging": 4, "prod": 9}
    record = record_of(
        "dev", overrides={"visionrag:registry": {"keepReleases": keep, "keepBuilds": 5, "untaggedExpiryDays": 2}}
    )
    (policy,) = [p for p in record.of_type(LIFECYCLE) if p.name == "registry-api-lifecycle"]
    rules = json.loads(policy.inputs["policy"])["rules"]
    assert json.loads(policy.inputs["policy"]) == json.loads(lifecycle_policy(keep, 5, 2))
    counts = {r["selection"].get("tagPatternList", [r["selection"]["tagStatus"]])[0]: r for r in rules}
    # 9 releases x (image, .sig, .att, .prov): a window counts every image a release tags.
    assert counts["release-prod-*"]["selection"]["countNumber"] == 36
    assert counts["any"]["selection"]["countNumber"] == 20


_GOOD: dict[str, Any] = {
    "name_prefix": "visionrag",
    "region": "us-east-1",
    "keep_releases": {"dev": 10, "staging": 10, "prod": 20},
    "keep_builds": 30,
    "untagged_expiry_days": 7,
}


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("keep_releases", {"keep_releases": {"dev": 0, "staging": 1, "prod": 1}}),
        ("keep_releases", {"keep_releases": {"dev": 1, "staging": 1}}),
        ("keep_releases", {"keep_releases": {"dev": 5, "staging": 5, "prod": 4}}),
        ("keep_builds", {"keep_builds": 0}),
        ("untagged_expiry_days", {"untagged_expiry_days": 0}),
        ("images", {"images": ()}),
        ("images", {"images": ("api", "api")}),
        ("images", {"images": ("API",)}),
        ("name_prefix", {"name_prefix": "Vision"}),
        ("pull_account_ids", {"pull_account_ids": ["*"]}),
        ("pull_account_ids", {"pull_account_ids": ["1234"]}),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, changes: dict[str, Any]) -> None:
    def program(cfg: StackConfig) -> None:
        Registry("registry", RegistryArgs(**{**_GOOD, **changes}))

    with pytest.raises(ValueError, match=rf"^{field}: "):
        run_stack("dev", program=program)


@pytest.mark.parametrize(
    ("stack", "override", "key", "says"),
    [
        ("dev", {"keepReleases": {"dev": 0, "staging": 1, "prod": 1}}, "registry.keepReleases", "between"),
        ("dev", {"keepReleases": {"dev": 9, "staging": 5, "prod": 20}}, "registry.keepReleases", "dev <= staging"),
        ("dev", {"keepBuilds": 0}, "registry.keepBuilds", ""),
        ("dev", {"untaggedExpiryDays": 0}, "registry.untaggedExpiryDays", ""),
        ("dev", {"accountId": "12345"}, "registry.accountId", "12-digit"),
        ("dev", {"pullAccountIds": ["*"]}, "registry.pullAccountIds", "wildcards are refused"),
        ("dev", {"pullAccountIds": ["123456789012"]}, "registry.pullAccountIds", "own account"),
        ("staging", {"pullAccountIds": [TIER_ACCOUNT]}, "registry.pullAccountIds", "only the owner"),
        ("dev", {"region": "eu-west-1"}, "registry.region", "owner creates the repositories in its own region"),
    ],
)
def test_config_refuses_a_bad_registry_naming_the_key(
    stack: str, override: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=rf"visionrag:{key}: .*{says}"):
        run_stack(stack, overrides={"visionrag:registry": override})


@pytest.mark.parametrize(
    ("stack", "workload", "image"),
    [
        ("staging", "api", "210987654321.dkr.ecr.us-east-1.amazonaws.com/visionrag-api@sha256:" + "a" * 64),
        ("prod", "worker", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/visionrag-worker@sha256:" + "b" * 64),
        ("dev", "embedder", "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-dev-embedder:1.0"),
        ("dev", "snapshots", "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api:1.0"),
        ("dev", "frontend", "docker.io/example/frontend:1.0"),
    ],
)
def test_an_image_outside_the_shared_registry_is_refused(stack: str, workload: str, image: str) -> None:
    repo = "worker" if workload == "snapshots" else workload
    with pytest.raises(ConfigError) as err:
        run_stack(stack, overrides={"visionrag:workloads": {workload: {"image": image}}})
    assert f"visionrag:workloads.{workload}.image: " in str(err.value)
    assert f"allowed: {HOST}/visionrag-{repo}:<tag> or {HOST}/visionrag-{repo}@sha256:<digest>" in str(err.value)


def test_the_owner_must_deploy_to_the_registry_account() -> None:
    # The offline engine answers get_caller_identity with 123456789012.
    with pytest.raises(ConfigError, match=r"visionrag:registry\.accountId: '210987654321' is not the account"):
        run_stack(
            "dev",
            overrides={
                "visionrag:registry": {"accountId": TIER_ACCOUNT},
                "visionrag:workloads": {
                    w: {"image": f"{TIER_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/visionrag-{r}:0.1.0"}
                    for w, r in (
                        ("api", "api"),
                        ("worker", "worker"),
                        ("embedder", "embedder"),
                        ("frontend", "frontend"),
                        ("snapshots", "worker"),
                    )
                },
            },
        )
