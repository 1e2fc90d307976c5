"""ECR: immutable tags, scan on push, KMS encryption, a lifecycle policy that keeps every stage's releases, and
the shared-registry model (docs/delivery.md, "Registry model"): only the owner stack declares repositories, and
their repository policies name tier accounts, never `*`."""

from __future__ import annotations

import itertools
from typing import Any

from pulumi_policy import Policy, ResourceValidationArgs, Severity, StackValidationArgs

from policies import ecr_lifecycle
from policies.rules._base import (
    Report,
    as_list,
    config_schema,
    get,
    knob,
    of_type,
    owner_of,
    policy_document,
    present,
    resource_policy,
    stack_policy,
    statements,
    truthy,
)

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"

# The pack's copies of infra/registry.py's promotion contract and cross-account actions (the pack imports
# nothing from infra/; tests/policies/test_registry_policies.py checks they agree).
RELEASE_TAG_PREFIX_DEFAULT = "release-"
RELEASE_STAGES_DEFAULT = ["dev", "staging", "prod"]  # promotion order
CROSS_ACCOUNT_ACTIONS_DEFAULT = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:DescribeImages",
]
# Probe tags: what CI and the promotion put on images (a git sha; cosign's signature tag).
_PROBE_TIME = "20260101T000000Z"
_GIT_SHA = "3f1c2a7e8b4d4e2a9c615a0d7e9b1c24a1b2c3d4"
_SIG = "sha256-" + "ab" * 32 + ".sig"


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


def _registry_owner(args: StackValidationArgs, report: Report) -> None:
    repos = of_type(list(args.resources), REPOSITORY)
    if knob(args, "owner", False):
        if not repos:
            report("this stack owns the shared registry (pack config owner: true) but declares no ECR repository")
        return
    for repo in repos:
        report(
            f"ECR repository {repo.name} in a stack that does not own the shared registry: the repositories exist "
            "once, in the owner stack (a second `up` in the same account collides on their names)",
            repo.urn,
        )


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if isinstance(principal, str):
        return [principal]
    if isinstance(principal, dict):
        return [str(v) for values in principal.values() for v in as_list(values)]
    return []


def _repository_policy(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != REPOSITORY_POLICY:
        return
    doc = policy_document(get(args.props, "policy"))
    if doc is None:
        report("the repository policy is not a JSON policy document")
        return
    allowed = set(knob(args, "allowedActions", CROSS_ACCOUNT_ACTIONS_DEFAULT))
    for st in statements(doc):
        if st.get("Effect") != "Allow":
            continue
        sid = st.get("Sid") or "(no Sid)"
        if "NotPrincipal" in st or "NotAction" in st:
            report(f"statement {sid}: Allow with NotPrincipal/NotAction grants more than it names")
        wild = [p for p in _principals(st) if "*" in p]
        if wild or "Principal" not in st:
            report(f"statement {sid}: principal {wild or 'missing'} lets any AWS account pull; name tier accounts")
        extra = sorted({a for a in as_list(st.get("Action")) if a not in allowed})
        if extra:
            report(f"statement {sid}: actions {extra} go beyond pulling (allowed: {sorted(allowed)})")


def _release_tag(prefix: str, stage: str, suffix: str = "") -> str:
    return f"{prefix}{stage}-{_PROBE_TIME}{suffix}"


def _lifecycle_releases(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != LIFECYCLE:
        return
    doc = policy_document(get(args.props, "policy"))
    if doc is None:
        report("the lifecycle policy is not a JSON document")
        return
    if errors := ecr_lifecycle.problems(doc):
        report(f"ECR would refuse this lifecycle policy: {'; '.join(errors)}")
        return
    prefix = knob(args, "releaseTagPrefix", RELEASE_TAG_PREFIX_DEFAULT)
    stages = list(knob(args, "releaseStages", RELEASE_STAGES_DEFAULT))
    windows: list[tuple[str, int]] = []
    for i, stage in enumerate(stages):
        # A release of `stage` carries the release tags of every stage before it too (it passed them), next to
        # its git-sha tag; its signature image the same tags with `.sig`; its provenance referrer (pushed untagged
        # by attest-build-provenance) ONLY the release tags with `.prov`.
        probes = [
            [_GIT_SHA, *(_release_tag(prefix, s) for s in stages[: i + 1])],
            [_SIG, *(_release_tag(prefix, s, ".sig") for s in stages[: i + 1])],
            [_release_tag(prefix, s, ".prov") for s in stages[: i + 1]],
        ]
        for tags in probes:
            rule = ecr_lifecycle.first_rule(doc, tags)
            sel = (rule or {}).get("selection") or {}
            where = f"an image tagged {tags}"
            if rule is None:
                report(f"no rule selects {where}: nothing bounds the {stage} releases")
                continue
            own = ecr_lifecycle.selects(sel, [_release_tag(prefix, stage)])
            if sel.get("tagStatus") != "tagged" or not own or ecr_lifecycle.selects(sel, [_GIT_SHA]):
                report(
                    f"rule {rule['rulePriority']} decides for {where}, but it is not a rule for the "
                    f"{prefix}{stage}-* tags: the {stage} releases and their .sig/.att/.prov are not protected"
                )
            elif sel.get("countType") != "imageCountMoreThan":
                report(
                    f"rule {rule['rulePriority']} expires {stage} releases by age (push time, not release time): "
                    "a running or rollback digest built long ago would expire; keep the newest N instead"
                )
            elif tags is probes[0]:
                windows.append((stage, int(sel["countNumber"])))
    for (earlier, n_earlier), (later, n_later) in itertools.pairwise(windows):
        if n_later < n_earlier:
            report(
                f"the {later} rule keeps {n_later} images but the {earlier} rule {n_earlier}: the {later} rule decides "
                f"for images of both, so {earlier}'s window would be cut to {later}'s"
            )


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
    stack_policy(
        name="ecr-registry-owner",
        description="Only the stack that owns the shared registry declares ECR repositories (and it does).",
        severity=Severity.HIGH,
        remediation="Set visionrag:registry.owner in exactly one stack (and owner: true in its pack config); other "
        "stacks reference the owner's repositories by name (docs/delivery.md, 'Registry model').",
        validate=_registry_owner,
        schema=config_schema({"owner": {"type": "boolean", "default": False}}),
        tags=["registry", "supply-chain"],
    ),
    resource_policy(
        name="ecr-repository-policy-scoped",
        description="ECR repository policies grant pull-only actions to named accounts, never to a `*` principal.",
        severity=Severity.CRITICAL,
        remediation="List tier accounts in visionrag:registry.pullAccountIds (12-digit ids); grant only the pull "
        "actions infra/registry.py's CROSS_ACCOUNT_ACTIONS names.",
        validate=_repository_policy,
        schema=config_schema(
            {
                "allowedActions": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": CROSS_ACCOUNT_ACTIONS_DEFAULT,
                }
            }
        ),
        tags=["registry", "supply-chain", "access"],
    ),
    resource_policy(
        name="ecr-lifecycle-protects-releases",
        description="ECR lifecycle policies keep every stage's releases (and their .sig/.att) by a per-stage count "
        "rule that no catch-all rule can override.",
        severity=Severity.HIGH,
        remediation="Use infra/registry.py's lifecycle_policy(): one tagged imageCountMoreThan rule per stage "
        "(release-<stage>-*), latest stage first with the largest window, before the untagged and `any` rules.",
        validate=_lifecycle_releases,
        schema=config_schema(
            {
                "releaseTagPrefix": {"type": "string", "default": RELEASE_TAG_PREFIX_DEFAULT},
                "releaseStages": {"type": "array", "items": {"type": "string"}, "default": RELEASE_STAGES_DEFAULT},
            }
        ),
        tags=["registry", "supply-chain", "availability"],
    ),
]
