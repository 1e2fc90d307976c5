"""Registry: the ONE shared set of ECR repositories every tier pulls from (docs/delivery.md, "Registry model").

Exactly one stack owns the registry (stack config `registry.owner`): it builds one repository per image, named
`<namePrefix>-<image>` (no tier), immutable, scanned, KMS-encrypted under the registry's own key, self-pruning by
the release-aware lifecycle below, and readable by the tier accounts in `pull_account_ids`. Every resource here
is retained when the owner stack is destroyed: the other tiers run (and roll back to) digests stored here.
Non-owner stacks build nothing from this module; their image references name the owner's repositories.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.keys import account_root_arn, customer_managed_key, root_admin_statement
from infra.naming import check_name_prefix, check_region
from infra.policy_document import policy_document

IMAGES: tuple[str, ...] = ("api", "worker", "embedder", "frontend")
_IMAGE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
ACCOUNT_ID = re.compile(r"^\d{12}$")

# Promotion contract (scripts/promote.py writes these tags, the lifecycle rules protect them): every digest a stage
# runs is tagged `release-<stage>-<UTC timestamp>`, and its evidence images get the same tag with a suffix, so a
# release and its evidence are kept or expired together.
RELEASE_TAG_PREFIX = "release-"
RELEASE_STAGES: tuple[str, ...] = ("dev", "staging", "prod")  # promotion order
# The images of one release, by the suffix their release tag gets: the image itself, its cosign signature (`.sig`,
# tag sha256-<hex>.sig), its cosign SBOM attestation (`.att`, tag sha256-<hex>.att), and its SLSA provenance
# (`.prov`): the Sigstore bundle actions/attest-build-provenance pushes as an UNTAGGED OCI referrer (manifest
# `subject` = the image), which the untagged-expiry rule would otherwise delete under a running release.
# Promotion tags exactly one image per suffix, so a release is exactly ARTIFACTS_PER_RELEASE images and a window of
# K releases is K x ARTIFACTS_PER_RELEASE images (ECR's count rules count images, not releases).
RELEASE_ARTIFACT_SUFFIXES: tuple[str, ...] = ("", ".sig", ".att", ".prov")
ARTIFACTS_PER_RELEASE = len(RELEASE_ARTIFACT_SUFFIXES)

# Bounds of the lifecycle knobs (stack config `registry.*` is validated against these).
KEEP_RELEASES = (1, 300)  # releases kept per stage: its rollback window (x ARTIFACTS_PER_RELEASE images)
KEEP_BUILDS = (1, 300)  # newest CI builds kept whatever their tags (x ARTIFACTS_PER_RELEASE); unreleased beyond go
UNTAGGED_EXPIRY_DAYS = (1, 365)

# What a tier account may do with the owner's repositories (repository policy): pull, plus DescribeImages so the
# tier's preflight can prove a digest exists before `up` (stacks/verify/preflight_checks.py passes registryId).
PULL_ACTIONS: tuple[str, ...] = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
CROSS_ACCOUNT_ACTIONS: tuple[str, ...] = (*PULL_ACTIONS, "ecr:DescribeImages")


def release_tag(stage: str, when: datetime) -> str:
    if stage not in RELEASE_STAGES:
        raise ValueError(f"stage: {stage!r} is not one of {', '.join(RELEASE_STAGES)}")
    return f"{RELEASE_TAG_PREFIX}{stage}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def release_tag_pattern(stage: str) -> str:
    """The lifecycle tagPatternList entry of `stage`'s releases: `release_tag(stage, t)` + each artifact suffix."""
    return f"{RELEASE_TAG_PREFIX}{stage}-*"


def registry_host(account_id: str, region: str) -> str:
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def repository_name(name_prefix: str, image: str) -> str:
    return f"{name_prefix}-{image}"


def check_keep_releases(keep_releases: Mapping[str, int]) -> None:
    """One window per stage, within bounds, and never smaller for a later stage.

    Why the order: an image released to prod also carries its staging and dev tags. ECR lets only the first
    (lowest rulePriority) rule whose tags match an image decide whether it expires, so the prod rule comes first
    and decides for every prod release; since every prod release also passed staging and dev (deploy.yml never
    skips a stage), a window at least as large as theirs keeps everything their windows would keep."""
    if set(keep_releases) != set(RELEASE_STAGES):
        raise ValueError(f"keep_releases: {dict(keep_releases)!r} must name exactly {', '.join(RELEASE_STAGES)}")
    lo, hi = KEEP_RELEASES
    for stage in RELEASE_STAGES:
        if not lo <= keep_releases[stage] <= hi:
            raise ValueError(f"keep_releases: {stage}={keep_releases[stage]!r} must be between {lo} and {hi}")
    for earlier, later in itertools.pairwise(RELEASE_STAGES):
        if keep_releases[later] < keep_releases[earlier]:
            raise ValueError(
                f"keep_releases: {later}={keep_releases[later]} is smaller than {earlier}={keep_releases[earlier]}; "
                "a later stage must keep at least as many releases (its rule decides for images of both)"
            )


def check_pull_account_ids(pull_account_ids: Sequence[str]) -> None:
    """12-digit ids, each once: a repository policy naming `*` would let any AWS account pull."""
    for account in pull_account_ids:
        if not ACCOUNT_ID.match(account):
            raise ValueError(f"pull_account_ids: {account!r} is not a 12-digit AWS account id (wildcards are refused)")
    if len(set(pull_account_ids)) != len(pull_account_ids):
        raise ValueError(f"pull_account_ids: {list(pull_account_ids)!r} lists an account twice")


def lifecycle_policy(keep_releases: Mapping[str, int], keep_builds: int, untagged_expiry_days: int) -> str:
    """The repositories' lifecycle policy (ECR semantics: docs/delivery.md, "Registry model").

    1..3  per stage, latest stage first: keep the newest `keep_releases[stage]` releases (x ARTIFACTS_PER_RELEASE
          images). An image whose tags match one of these rules can never be expired by a later rule, so releases
          and their .sig/.att/.prov leave only through their own stage's window.
    4     untagged images (build leftovers) expire after `untagged_expiry_days`.
    5     `tagStatus: any` (ECR requires it last): keep the newest `keep_builds` builds (x ARTIFACTS_PER_RELEASE);
          this bounds the CI builds (git-sha tags, their sha256-<hex>.sig/.att) that no stage ever released.
    """
    check_keep_releases(keep_releases)
    rules: list[dict[str, Any]] = []
    for stage in reversed(RELEASE_STAGES):
        rules.append(
            {
                "rulePriority": len(rules) + 1,
                "description": f"keep the newest {keep_releases[stage]} {stage} releases (image, .sig, .att, .prov)",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [release_tag_pattern(stage)],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_releases[stage] * ARTIFACTS_PER_RELEASE,
                },
                "action": {"type": "expire"},
            }
        )
    rules.append(
        {
            "rulePriority": len(rules) + 1,
            "description": f"expire untagged images after {untagged_expiry_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": untagged_expiry_days,
            },
            "action": {"type": "expire"},
        }
    )
    rules.append(
        {
            "rulePriority": len(rules) + 1,
            "description": f"keep the newest {keep_builds} unreleased CI builds (image and its evidence)",
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": keep_builds * ARTIFACTS_PER_RELEASE,
            },
            "action": {"type": "expire"},
        }
    )
    return json.dumps({"rules": rules}, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class RegistryArgs:
    name_prefix: str  # the project prefix, e.g. "visionrag": repositories are "<name_prefix>-<image>"
    region: str
    keep_releases: Mapping[str, int]  # per stage in RELEASE_STAGES
    keep_builds: int
    untagged_expiry_days: int
    # Tier accounts (not this one) whose nodes pull from here; same-account pulls need only IAM.
    pull_account_ids: Sequence[str] = ()
    images: Sequence[str] = IMAGES
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: RegistryArgs) -> None:
    check_name_prefix("name_prefix", args.name_prefix)
    check_region("region", args.region)
    check_keep_releases(args.keep_releases)
    lo, hi = KEEP_BUILDS
    if not lo <= args.keep_builds <= hi:
        raise ValueError(f"keep_builds: {args.keep_builds!r} must be between {lo} and {hi}")
    lo, hi = UNTAGGED_EXPIRY_DAYS
    if not lo <= args.untagged_expiry_days <= hi:
        raise ValueError(f"untagged_expiry_days: {args.untagged_expiry_days!r} must be between {lo} and {hi}")
    if not args.images or len(set(args.images)) != len(args.images):
        raise ValueError(f"images: {list(args.images)!r} must be non-empty and without duplicates")
    for image in args.images:
        if not _IMAGE.match(image):
            raise ValueError(f"images: {image!r} is not a valid repository name part (lowercase, digits, '-', '_')")
    check_pull_account_ids(args.pull_account_ids)


def pull_statement(pull_account_ids: Sequence[str], partition: pulumi.Input[str]) -> dict[str, Any]:
    """Cross-account pull: the tier accounts by root ARN (their own IAM then decides which roles may pull)."""
    return {
        "sid": "TierAccountsPull",
        "effect": "Allow",
        "principals": [{"type": "AWS", "identifiers": [account_root_arn(a, partition) for a in pull_account_ids]}],
        "actions": list(CROSS_ACCOUNT_ACTIONS),
    }


class Registry(pulumi.ComponentResource):
    key: aws.kms.Key
    repositories: dict[str, aws.ecr.Repository]
    urls: dict[str, pulumi.Output[str]]
    arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Registry", name, None, opts)
        # Retained on destroy: the other tiers run digests stored here, and a deleted key would make every
        # retained image unreadable (ECR decrypts through grants on this key).
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke_opts)
        partition = aws.get_partition_output(opts=invoke_opts).partition
        # The registry's own key (not the owner tier's Keys): its lifetime is the registry's, not the tier's.
        # Root admin only: ECR uses it through the grants it creates at repository creation, for push and pull.
        self.key, _ = customer_managed_key(
            f"{name}-key",
            alias=f"alias/{args.name_prefix}-registry",
            description=f"{args.name_prefix}: shared ECR registry image layers",
            policy=policy_document([root_admin_statement(identity.account_id, partition)], opts=invoke_opts),
            tags={**args.tags, "purpose": "registry"},
            opts=keep,
        )
        policy = lifecycle_policy(args.keep_releases, args.keep_builds, args.untagged_expiry_days)
        pull = (
            policy_document([pull_statement(args.pull_account_ids, partition)], opts=invoke_opts)
            if args.pull_account_ids
            else None
        )
        self.repositories = {}
        for image in args.images:
            repo_name = repository_name(args.name_prefix, image)
            repo = aws.ecr.Repository(
                f"{name}-{image}",
                name=repo_name,
                # A tag, once pushed, always names the same digest: what was tested is what gets deployed.
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
                # Never delete a repository that still holds images (a release may depend on them).
                force_delete=False,
                tags={**args.tags, "Name": repo_name, "image": image},
                opts=keep,
            )
            aws.ecr.LifecyclePolicy(f"{name}-{image}-lifecycle", repository=repo.name, policy=policy, opts=keep)
            if pull is not None:
                aws.ecr.RepositoryPolicy(f"{name}-{image}-pull", repository=repo.name, policy=pull, opts=keep)
            self.repositories[image] = repo
        self.urls = {image: repo.repository_url for image, repo in self.repositories.items()}
        self.arns = {image: repo.arn for image, repo in self.repositories.items()}
        self.register_outputs({"urls": self.urls, "arns": self.arns, "key_arn": self.key.arn})
