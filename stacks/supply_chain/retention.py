"""Would the repository's lifecycle policy expire a digest right after it is promoted? Then promotion refuses it.

A stage's release rule keeps the newest `keepReleases[stage]` releases by FIRST push time (a tag added later does
not count as a push; docs/delivery.md, "Registry model"). A digest built before K or more digests already released
to the stage is outside the window the moment it gets its release tag: ECR's next daily run (within 24 hours) may
delete it and its evidence while the stage runs it. The answer comes from the repository's live lifecycle policy,
evaluated with policies/ecr_lifecycle.py on the repository's images as they would be after the tagging, under both
readings of ECR's counting (the one that expires more decides).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from infra.registry import ARTIFACTS_PER_RELEASE, RELEASE_ARTIFACT_SUFFIXES, RELEASE_TAG_PREFIX
from policies import ecr_lifecycle
from policies.ecr_lifecycle import Image


def _is_release_of(stage: str, tag: str) -> bool:
    """A stage's release tag on an image itself (not on its .sig/.att/.prov)."""
    evidence = tuple(s for s in RELEASE_ARTIFACT_SUFFIXES if s)
    return tag.startswith(f"{RELEASE_TAG_PREFIX}{stage}-") and not tag.endswith(evidence)


def newer_releases(stage: str, digest: str, images: list[Image]) -> int:
    """How many digests built after `digest` (first push time) are already released to `stage`."""
    own = next((i for i in images if i.digest == digest), None)
    if own is None:
        return 0
    return sum(
        1
        for i in images
        if i.digest != digest and i.pushed_at > own.pushed_at and any(_is_release_of(stage, t) for t in i.tags)
    )


def window_problem(
    *,
    stage: str,
    digest: str,
    planned: Mapping[str, str],
    images: list[Image],
    policy: Mapping[str, Any] | None,
    now: datetime,
) -> str | None:
    """Why `digest` may not be promoted into `stage` (None: it may). `planned`: digest -> the tag promotion would
    add (the image and its evidence); `images`: the repository's images now; `policy`: its lifecycle policy."""
    if policy is None:
        return None  # nothing ever expires
    after = [replace(i, tags=i.tags | {planned[i.digest]}) if i.digest in planned else i for i in images]
    gone: set[str] = set()
    try:
        for reading in (True, False):
            gone |= ecr_lifecycle.expired(policy, after, now, earlier_matches_count=reading)
    except (ValueError, KeyError, TypeError) as exc:
        # A policy this evaluator cannot read cannot be shown to keep the release: refuse rather than guess.
        return f"the repository's lifecycle policy cannot be evaluated ({exc}); fix it (infra/registry.py) first"
    if not gone & set(planned):
        return None
    newer = newer_releases(stage, digest, images)
    own = next((i for i in after if i.digest == digest), None)
    rule = ecr_lifecycle.first_rule(policy, own.tags if own else [])
    keep = ""
    if rule and rule["selection"].get("countType") == "imageCountMoreThan":
        releases = rule["selection"]["countNumber"] // ARTIFACTS_PER_RELEASE
        keep = f"; rule {rule['rulePriority']} keeps the newest {releases}"
    return (
        f"outside the {stage} retention window: {newer} digest(s) built after it are already released to {stage}"
        f"{keep} (by first push time), so the lifecycle could expire it (or its evidence) right after promotion"
    )
