"""Registry: one ECR repository per image the project builds, immutable, scanned, KMS-encrypted, self-pruning.

Repositories are named `<namePrefix>-<image>` (no tier), matching the image references in Pulumi.<stack>.yaml:
each tier is meant to live in its own AWS account, and a release is promoted by copying the same digest into the
next account's repository. Stacks sharing one account need distinct name prefixes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.naming import check_name_prefix

IMAGES: tuple[str, ...] = ("api", "worker", "embedder", "frontend")
KEEP_RELEASES = (1, 1000)  # tagged images kept per repository (the lifecycle rule's countNumber)
_IMAGE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def lifecycle_policy(keep_releases: int, untagged_expiry_days: int) -> str:
    """Untagged images (build leftovers) go after `untagged_expiry_days`; beyond that only the newest
    `keep_releases` images are kept, which bounds the rollback window."""
    rules = [
        {
            "rulePriority": 1,
            "description": f"expire untagged images after {untagged_expiry_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": untagged_expiry_days,
            },
            "action": {"type": "expire"},
        },
        {
            # tagStatus "any" must be the rule with the highest priority number.
            "rulePriority": 2,
            "description": f"keep the newest {keep_releases} images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_releases},
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class RegistryArgs:
    name_prefix: str  # the project prefix, e.g. "visionrag": repositories are "<name_prefix>-<image>"
    kms_key_arn: pulumi.Input[str]
    keep_releases: int
    untagged_expiry_days: int
    images: Sequence[str] = IMAGES
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: RegistryArgs) -> None:
    check_name_prefix("name_prefix", args.name_prefix)
    lo, hi = KEEP_RELEASES
    if not lo <= args.keep_releases <= hi:
        raise ValueError(f"keep_releases: {args.keep_releases!r} must be between {lo} and {hi}")
    if args.untagged_expiry_days < 1:
        raise ValueError(f"untagged_expiry_days: {args.untagged_expiry_days!r} must be >= 1")
    if not args.images or len(set(args.images)) != len(args.images):
        raise ValueError(f"images: {list(args.images)!r} must be non-empty and without duplicates")
    for image in args.images:
        if not _IMAGE.match(image):
            raise ValueError(f"images: {image!r} is not a valid repository name part (lowercase, digits, '-', '_')")


class Registry(pulumi.ComponentResource):
    repositories: dict[str, aws.ecr.Repository]
    urls: dict[str, pulumi.Output[str]]
    arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        policy = lifecycle_policy(args.keep_releases, args.untagged_expiry_days)
        self.repositories = {}
        for image in args.images:
            repo_name = f"{args.name_prefix}-{image}"
            repo = aws.ecr.Repository(
                f"{name}-{image}",
                name=repo_name,
                # A tag, once pushed, always names the same digest: what was tested is what gets deployed.
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
                # Never delete a repository that still holds images (a release may depend on them).
                force_delete=False,
                tags={**args.tags, "Name": repo_name, "image": image},
                opts=child,
            )
            aws.ecr.LifecyclePolicy(f"{name}-{image}-lifecycle", repository=repo.name, policy=policy, opts=child)
            self.repositories[image] = repo
        self.urls = {image: repo.repository_url for image, repo in self.repositories.items()}
        self.arns = {image: repo.arn for image, repo in self.repositories.items()}
        self.register_outputs({"urls": self.urls, "arns": self.arns})
