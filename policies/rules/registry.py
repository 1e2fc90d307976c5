"""ECR: immutable tags, scan on push, KMS encryption, a lifecycle policy."""

from __future__ import annotations

from pulumi_policy import Policy, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules._base import (
    Report,
    as_list,
    get,
    of_type,
    owner_of,
    present,
    resource_policy,
    stack_policy,
    truthy,
)

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def _immutable(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != REPOSITORY:
        return
    mutability = get(args.props, "imageTagMutability")
    # Unset means MUTABLE (the provider default).
    if mutability not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        report(f"imageTagMutability is {mutability!r}: a pushed tag could be replaced under a running digest")


def _scan_on_push(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != REPOSITORY:
        return
    if not truthy(get(args.props, "imageScanningConfiguration", "scanOnPush")):
        report("imageScanningConfiguration.scanOnPush is not true")


def _kms(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != REPOSITORY:
        return
    for cfg in as_list(get(args.props, "encryptionConfigurations")):
        if get(cfg, "encryptionType") == "KMS" and present(cfg, "kmsKey"):
            return
    report("encryptionConfigurations does not use KMS with a customer-managed kmsKey (AES256 is the default)")


def _lifecycle(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    repos = of_type(resources, REPOSITORY)
    covered = {o.urn for p in of_type(resources, LIFECYCLE) if (o := owner_of(p, repos, "repository", ("name",)))}
    for repo in repos:
        if repo.urn not in covered:
            report(f"ECR repository {repo.name} has no lifecycle policy (untagged images accumulate)", repo.urn)


POLICIES: list[Policy] = [
    resource_policy(
        name="ecr-immutable-tags",
        description="ECR repositories make tags immutable.",
        severity=Severity.HIGH,
        remediation="Set image_tag_mutability='IMMUTABLE'.",
        validate=_immutable,
        tags=["registry", "supply-chain"],
    ),
    resource_policy(
        name="ecr-scan-on-push",
        description="ECR repositories scan images on push.",
        severity=Severity.MEDIUM,
        remediation="Set image_scanning_configuration={'scan_on_push': True}.",
        validate=_scan_on_push,
        tags=["registry", "supply-chain"],
    ),
    resource_policy(
        name="ecr-kms-encryption",
        description="ECR repositories encrypt images with a customer-managed KMS key.",
        severity=Severity.MEDIUM,
        remediation="Set encryption_configurations=[{'encryption_type': 'KMS', 'kms_key': <key arn>}] (only at "
        "creation: changing it replaces the repository).",
        validate=_kms,
        tags=["registry", "encryption"],
    ),
    stack_policy(
        name="ecr-lifecycle-policy",
        description="Every ECR repository has a lifecycle policy.",
        severity=Severity.LOW,
        remediation="Add aws.ecr.LifecyclePolicy keeping N tagged releases and expiring untagged images.",
        validate=_lifecycle,
        tags=["registry", "cost"],
    ),
]
