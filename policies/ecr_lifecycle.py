"""Amazon ECR lifecycle policy semantics, offline: which images one evaluation of a policy expires.

Written from the Amazon ECR User Guide, "Lifecycle policy evaluation rules" and "Lifecycle policy properties"
(docs/delivery.md, "Registry model", cites them):

- Rules are applied in rulePriority order, lowest first; priorities are unique; a `tagStatus: any` rule must
  have the highest rulePriority.
- `tagged` needs tagPatternList or tagPrefixList (not both); `untagged` takes neither. Several entries in one
  list select only images that match ALL of them ("all of the tags in the list are matched against any of the
  image's tags"). A pattern's `*` matches any run of characters, at most four per pattern.
- An image is expired by exactly one or zero rules, and an image that matches the tagging requirements of a
  rule cannot be expired by a rule with a lower priority (a higher rulePriority).
- "Rules can never mark images that are marked by higher priority rules, but can still identify them as if
  they haven't been expired": whether a later rule's count still includes images an earlier rule matched is
  not spelt out. `earlier_matches_count=True` (the default) counts them, which expires the most (a later rule
  keeps its N newest among ALL images it selects); tests check safety under both readings.
- OCI 1.1 referrers (a manifest whose `subject` names another image: signatures, SBOMs, provenance bundles) are
  images of their own: an untagged referrer is selected by `untagged` rules and counted by `any` rules like any
  other image, whatever its subject. When a subject image is expired, ECR also deletes its referrers (What's New,
  2024-06-27, "Amazon ECR supports OCI Image and Distribution specification version 1.1").
- imageCountMoreThan: images sorted youngest to oldest by push time, those beyond countNumber expire.
  sinceImagePushed: images pushed more than countNumber days ago expire. Push time is the time the manifest was
  first pushed: adding a tag later (promotion) does not change it.

Used by the pack's `ecr-lifecycle-protects-releases` (policies/rules/registry.py) and by the lifecycle
simulation (tests/infra/test_registry_lifecycle.py). Imports nothing from infra/: the pack ships on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MAX_WILDCARDS = 4  # per tagPatternList entry
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed")
TAG_STATUSES = ("tagged", "untagged", "any")


@dataclass(frozen=True)
class Image:
    digest: str
    tags: frozenset[str]
    pushed_at: datetime
    subject: str | None = None  # a referrer's subject digest (ECR DescribeImages `subjectManifestDigest`)


def pattern_matches(pattern: str, tag: str) -> bool:
    """`*` is the only wildcard; the whole tag must match ("prod*" selects prod, prod1, prod2)."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), tag) is not None


def selects(selection: Mapping[str, Any], tags: Iterable[str]) -> bool:
    """Whether a rule's selection matches an image with `tags` (its tagging requirements, not its count)."""
    tags = set(tags)
    status = selection.get("tagStatus")
    if status == "any":
        return True
    if status == "untagged":
        return not tags
    if status != "tagged" or not tags:
        return False
    patterns = selection.get("tagPatternList") or []
    prefixes = selection.get("tagPrefixList") or []
    if patterns:
        return all(any(pattern_matches(p, t) for t in tags) for p in patterns)
    return bool(prefixes) and all(any(t.startswith(p) for t in tags) for p in prefixes)


def problems(policy: Mapping[str, Any]) -> list[str]:
    """What ECR's PutLifecyclePolicy would refuse (the documented constraints), as sentences."""
    rules = policy.get("rules")
    if not isinstance(rules, list) or not rules:
        return ["the policy has no rules"]
    out: list[str] = []
    priorities: list[Any] = [r.get("rulePriority") for r in rules if isinstance(r, Mapping)]
    if len(priorities) != len(rules) or not all(isinstance(p, int) and p >= 1 for p in priorities):
        return ["every rule needs a positive integer rulePriority"]
    if len(set(priorities)) != len(priorities):
        out.append(f"rulePriority values {priorities} are not unique")
    untagged = 0
    for rule in rules:
        p, sel = rule["rulePriority"], rule.get("selection") or {}
        status, count_type = sel.get("tagStatus"), sel.get("countType")
        patterns, prefixes = sel.get("tagPatternList"), sel.get("tagPrefixList")
        if status not in TAG_STATUSES:
            out.append(f"rule {p}: tagStatus {status!r} is not one of {', '.join(TAG_STATUSES)}")
        if status == "tagged" and bool(patterns) == bool(prefixes):
            out.append(f"rule {p}: tagStatus 'tagged' needs exactly one of tagPatternList, tagPrefixList")
        if status != "tagged" and (patterns or prefixes):
            out.append(f"rule {p}: tag lists are only allowed with tagStatus 'tagged'")
        untagged += status == "untagged"
        for pattern in patterns or []:
            if pattern.count("*") > MAX_WILDCARDS:
                out.append(f"rule {p}: pattern {pattern!r} has more than {MAX_WILDCARDS} wildcards")
        if count_type not in COUNT_TYPES:
            out.append(f"rule {p}: countType {count_type!r} is not one of {', '.join(COUNT_TYPES)}")
        if (sel.get("countUnit") is not None) != (count_type == "sinceImagePushed"):
            out.append(f"rule {p}: countUnit goes with sinceImagePushed only")
        number = sel.get("countNumber")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            out.append(f"rule {p}: countNumber {number!r} is not a positive integer")
        if (rule.get("action") or {}).get("type") != "expire":
            out.append(f"rule {p}: action type must be 'expire'")
    if untagged > 1:
        out.append("more than one rule selects untagged images")
    top = max(priorities)
    for rule in rules:
        if (rule.get("selection") or {}).get("tagStatus") == "any" and rule["rulePriority"] != top:
            out.append(f"rule {rule['rulePriority']}: tagStatus 'any' must have the highest rulePriority ({top})")
    return out


def ordered(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(policy["rules"], key=lambda r: r["rulePriority"])


def first_rule(policy: Mapping[str, Any], tags: Iterable[str]) -> Mapping[str, Any] | None:
    """The rule that decides an image's fate: the first (by priority) whose tagging requirements it matches."""
    tags = list(tags)
    return next((r for r in ordered(policy) if selects(r["selection"], tags)), None)


def expired(
    policy: Mapping[str, Any], images: Sequence[Image], now: datetime, *, earlier_matches_count: bool = True
) -> set[str]:
    """The digests one evaluation at `now` expires."""
    if errors := problems(policy):
        raise ValueError("; ".join(errors))
    gone: set[str] = set()
    matched: set[str] = set()  # matched the tagging requirements of an earlier rule: no later rule expires it
    for rule in ordered(policy):
        sel = rule["selection"]
        hits = [i for i in images if selects(sel, i.tags)]
        counted = hits if earlier_matches_count else [i for i in hits if i.digest not in matched]
        if sel["countType"] == "imageCountMoreThan":
            youngest_first = sorted(counted, key=lambda i: i.pushed_at, reverse=True)
            candidates = youngest_first[sel["countNumber"] :]
        else:
            cutoff = now - timedelta(days=sel["countNumber"])
            candidates = [i for i in counted if i.pushed_at < cutoff]
        gone |= {i.digest for i in candidates if i.digest not in matched}
        matched |= {i.digest for i in hits}
    # Referrers go with their expired subject (and theirs with them).
    while cascade := {i.digest for i in images if i.subject in gone and i.digest not in gone}:
        gone |= cascade
    return gone
