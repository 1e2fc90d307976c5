"""Registry: immutable, scanned, KMS-encrypted repositories that prune themselves by the configured policy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.registry import IMAGES, Registry, RegistryArgs, lifecycle_policy
from stacks.config import ConfigError, StackConfig
from stacks.engine.offline import Record, RecordedResource, run_stack

STACKS = ("dev", "staging", "prod")
REPO = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def _children(record: Record, type_: str) -> dict[str, RecordedResource]:
    (component,) = [r for r in record.resources if r.type == "visionrag:infra:Registry"]
    return {r.name: r for r in record.of_type(type_) if r.parent == component.urn}


@pytest.mark.parametrize("stack", STACKS)
def test_one_hardened_repository_per_image(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    repos = _children(record, REPO)
    assert (
        set(repos)
        == {f"registry-{i}" for i in IMAGES}
        == {f"registry-{i}" for i in ("api", "worker", "embedder", "frontend")}
    )
    ecr_key = record.one("aws:kms/key:Key", "keys-ecr").outputs["arn"]
    for image in IMAGES:
        repo = repos[f"registry-{image}"].inputs
        assert repo["name"] == f"visionrag-{image}"
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": ecr_key}]
        assert repo["forceDelete"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_repository_urls_match_the_image_references_of_the_stack(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    urls = record.outputs["ecrRepositoryUrls"]
    assert set(urls) == set(IMAGES)
    for image in ("api", "worker", "embedder"):
        configured: str = getattr(record.config.workloads, image).image
        assert configured.startswith(f"{urls[image]}:") or configured.startswith(f"{urls[image]}@sha256:")


@pytest.mark.parametrize("stack", STACKS)
def test_every_repository_has_the_configured_lifecycle(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    repos = _children(record, REPO)
    policies = _children(record, LIFECYCLE)
    cfg = record.config.registry
    for image in IMAGES:
        policy = policies[f"registry-{image}-lifecycle"]
        assert policy.inputs["repository"] == repos[f"registry-{image}"].outputs["name"]
        rules = {r["rulePriority"]: r for r in json.loads(policy.inputs["policy"])["rules"]}
        assert rules[1]["selection"] == {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": cfg.untagged_expiry_days,
        }
        assert rules[2]["selection"] == {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": cfg.keep_releases,
        }
        assert all(r["action"] == {"type": "expire"} for r in rules.values())


def test_lifecycle_follows_config_overrides(record_of: Any) -> None:
    record = record_of("dev", overrides={"visionrag:registry": {"keepReleases": 5, "untaggedExpiryDays": 2}})
    (policy,) = [p for p in record.of_type(LIFECYCLE) if p.name == "registry-api-lifecycle"]
    assert json.loads(policy.inputs["policy"]) == json.loads(lifecycle_policy(5, 2))


_GOOD: dict[str, Any] = {
    "name_prefix": "visionrag",
    "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/x",
    "keep_releases": 30,
    "untagged_expiry_days": 7,
}


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("keep_releases", {"keep_releases": 0}),
        ("keep_releases", {"keep_releases": 1001}),
        ("untagged_expiry_days", {"untagged_expiry_days": 0}),
        ("images", {"images": ()}),
        ("images", {"images": ("api", "api")}),
        ("images", {"images": ("API",)}),
        ("name_prefix", {"name_prefix": "Vision"}),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, changes: dict[str, Any]) -> None:
    def program(cfg: StackConfig) -> None:
        Registry("registry", RegistryArgs(**{**_GOOD, **changes}))

    with pytest.raises(ValueError, match=rf"^{field}: "):
        run_stack("dev", program=program)


@pytest.mark.parametrize(
    ("override", "key"), [({"keepReleases": 0}, "keepReleases"), ({"untaggedExpiryDays": 0}, "untaggedExpiryDays")]
)
def test_config_refuses_a_bad_registry_naming_the_key(override: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"visionrag:registry\.{key}: "):
        run_stack("dev", overrides={"visionrag:registry": override})
