"""The registry's lifecycle policy over a simulated history: months of CI builds (image + cosign .sig/.att + the
SLSA provenance bundle attest-build-provenance pushes as an untagged OCI referrer of the image; some untagged
leftovers), dev/staging/prod promotions and rollbacks, ECR's daily lifecycle run in between (evaluated by
policies/ecr_lifecycle.py, ECR's documented semantics, referrers deleted with their subject included).

What must hold every day: no digest a stage runs or may roll back to (nor its .sig/.att/.prov) is expired, nor any of
the newest `keepReleases[stage]` builds released to a stage; and what must go: unreleased CI builds beyond
`keepBuilds`, untagged leftovers after `untaggedExpiryDays`. The pre-shared-registry policy ("keep the newest 30
images, any tag") is run through the same history and must be caught.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import infra.registry as registry
from infra.registry import (
    ARTIFACTS_PER_RELEASE,
    RELEASE_ARTIFACT_SUFFIXES,
    RELEASE_STAGES,
    lifecycle_policy,
    release_tag,
)
from policies.ecr_lifecycle import Image, expired

KEEP = {"dev": 10, "staging": 10, "prod": 20}
KEEP_BUILDS = 30
UNTAGGED_DAYS = 7
ROLLBACK_DEPTH = 3  # previous distinct releases a stage may roll back to (deploy.yml rolls back one)
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 150

OLD_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
                "action": {"type": "expire"},
            },
        ]
    }
)


@dataclass
class Build:
    n: int
    pushed_at: datetime

    @property
    def digest(self) -> str:
        return f"sha256:{self.n:064x}"

    def evidence(self) -> tuple[str, str, str, str]:
        """The image, its cosign signature / attestation manifests and its provenance referrer (each its own
        digest), in the order of infra.registry.RELEASE_ARTIFACT_SUFFIXES."""
        return (self.digest, f"sha256:{self.n:060x}5160", f"sha256:{self.n:060x}a77e", f"sha256:{self.n:060x}b40f")


@dataclass
class Repository:
    images: dict[str, Image] = field(default_factory=dict)
    untagged: int = 0

    def push(self, digest: str, tags: set[str], at: datetime, subject: str | None = None) -> None:
        self.images[digest] = Image(digest, frozenset(tags), at, subject)

    def tag(self, digest: str, tag: str) -> None:
        # ECR keeps the first push time when a tag is added (promotion never re-pushes).
        img = self.images[digest]
        self.images[digest] = Image(digest, img.tags | {tag}, img.pushed_at, img.subject)


@dataclass
class Stage:
    name: str
    history: list[Build] = field(default_factory=list)  # releases, in release order (rollbacks included)

    @property
    def current(self) -> Build | None:
        return self.history[-1] if self.history else None

    def rollback_targets(self) -> list[Build]:
        seen: list[Build] = []
        for b in reversed(self.history[:-1]):
            if b not in seen and b is not self.current:
                seen.append(b)
            if len(seen) == ROLLBACK_DEPTH:
                break
        return seen


def _simulate(
    policy: dict[str, Any],
    *,
    earlier_matches_count: bool,
    seed: int,
    suffixes: tuple[str, ...] = RELEASE_ARTIFACT_SUFFIXES,
) -> dict[str, Any]:
    """`suffixes`: the evidence a promotion tags (default: what stacks/supply_chain/promotion.py tags)."""
    rng = random.Random(seed)
    repo = Repository()
    builds: list[Build] = []
    stages = {s: Stage(s) for s in RELEASE_STAGES}
    released_to: dict[str, list[Build]] = {s: [] for s in RELEASE_STAGES}
    violations: list[str] = []
    expired_total: set[str] = set()

    def release(stage: str, build: Build, when: datetime) -> None:
        if any(d not in repo.images for d in build.evidence()):
            violations.append(f"{when:%F}: {stage} cannot deploy build {build.n}: expired (or its evidence)")
            return
        tag = release_tag(stage, when)
        for digest, suffix in zip(build.evidence(), RELEASE_ARTIFACT_SUFFIXES, strict=True):
            if suffix in suffixes:
                repo.tag(digest, f"{tag}{suffix}")
        stages[stage].history.append(build)
        if build not in released_to[stage]:
            released_to[stage].append(build)

    def promote(stage: str, when: datetime) -> None:
        s = stages[stage]
        if s.current is not None and s.history[:-1] and rng.random() < 0.08:
            # A failed verify: the deploy redeploys what ran before (the promotion tags it again).
            release(stage, s.history[-2], when)
            return
        before = RELEASE_STAGES[RELEASE_STAGES.index(stage) - 1] if stage != "dev" else None
        candidate = builds[-1] if before is None else stages[before].current
        if candidate is not None and candidate is not s.current:
            release(stage, candidate, when)

    for day in range(DAYS):
        today = START + timedelta(days=day)
        for k in range(rng.choice((0, 1, 2, 3, 4, 6))):
            at = today + timedelta(hours=9 + 2 * k, minutes=rng.randrange(60))
            build = Build(len(builds), at)
            builds.append(build)
            image, sig, att, prov = build.evidence()
            repo.push(image, {f"{build.n:040x}"}, at)  # CI tags the git sha
            repo.push(prov, set(), at + timedelta(minutes=3), subject=image)  # attest-build-provenance: no tag
            repo.push(sig, {f"sha256-{image[7:]}.sig"}, at + timedelta(minutes=4))
            repo.push(att, {f"sha256-{image[7:]}.att"}, at + timedelta(minutes=5))
            if rng.random() < 0.2:  # a build leftover nobody tags
                repo.untagged += 1
                repo.push(f"sha256:{repo.untagged:060x}dead", set(), at)
            if rng.random() < 0.85:  # deploy.yml deploys (most) main builds to dev
                promote("dev", at + timedelta(minutes=30))
        if rng.random() < 0.35:
            promote("staging", today + timedelta(hours=20))
        if today.weekday() in (1, 3) and rng.random() < 0.8:
            promote("prod", today + timedelta(hours=21))

        # ECR's daily lifecycle run.
        now = today + timedelta(hours=23, minutes=59)
        gone = expired(policy, list(repo.images.values()), now, earlier_matches_count=earlier_matches_count)
        protected: dict[str, str] = {}
        for stage in stages.values():
            for b in ([stage.current] if stage.current else []) + stage.rollback_targets():
                for d in b.evidence():
                    protected[d] = f"{stage.name} runs or may roll back to build {b.n}"
            newest = sorted(released_to[stage.name], key=lambda b: b.pushed_at)[-KEEP[stage.name] :]
            for b in newest:
                for d in b.evidence():
                    protected.setdefault(d, f"build {b.n} is among the newest {KEEP[stage.name]} {stage.name} releases")
        violations += [f"day {day}: {d} expired although {why}" for d, why in protected.items() if d in gone]
        for d in gone:
            del repo.images[d]
        expired_total |= gone
    return {
        "repo": repo,
        "builds": builds,
        "stages": stages,
        "violations": violations,
        "expired": expired_total,
        "end": START + timedelta(days=DAYS),
    }


def _policy() -> dict[str, Any]:
    return json.loads(lifecycle_policy(KEEP, KEEP_BUILDS, UNTAGGED_DAYS))


@pytest.mark.parametrize("earlier_matches_count", [True, False], ids=["later-rules-count-earlier", "they-do-not"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_running_or_rollback_release_nor_its_evidence_is_ever_expired(
    earlier_matches_count: bool, seed: int
) -> None:
    run = _simulate(_policy(), earlier_matches_count=earlier_matches_count, seed=seed)
    assert len(run["builds"]) > 300, "the history must be long enough to prune"
    assert {s: len(st.history) for s, st in run["stages"].items()}["prod"] > 20
    assert run["violations"] == []


@pytest.mark.parametrize("earlier_matches_count", [True, False], ids=["later-rules-count-earlier", "they-do-not"])
def test_old_unreleased_builds_and_leftovers_are_expired(earlier_matches_count: bool) -> None:
    run = _simulate(_policy(), earlier_matches_count=earlier_matches_count, seed=7)
    repo, end = run["repo"], run["end"]
    left = list(repo.images.values())
    released = [i for i in left if any(t.startswith("release-") for t in i.tags)]
    unreleased = [i for i in left if i.tags and i not in released]
    untagged = [i for i in left if not i.tags]
    # The catch-all keeps at most keepBuilds builds' worth of images that no stage released.
    assert len(unreleased) <= KEEP_BUILDS * ARTIFACTS_PER_RELEASE
    assert all(end - i.pushed_at <= timedelta(days=UNTAGGED_DAYS + 1) for i in untagged)
    # Release windows prune too: what is left is bounded by the windows, not by the history's length.
    assert len(released) <= sum(KEEP.values()) * ARTIFACTS_PER_RELEASE
    assert len(run["expired"]) > len(run["builds"])  # most of the history is gone
    # The oldest builds, released or not, are gone.
    assert all(d not in repo.images for b in run["builds"][:50] for d in b.evidence())


def test_the_old_any_tag_count_policy_is_caught() -> None:
    run = _simulate(json.loads(OLD_POLICY), earlier_matches_count=True, seed=1)
    assert run["violations"], "the simulation cannot tell a policy that expires running releases"
    assert any("prod runs or may roll back to" in v for v in run["violations"])


def test_every_release_keeps_exactly_its_artifacts_and_its_provenance_referrer() -> None:
    """Each stage's window holds exactly keepReleases x ARTIFACTS_PER_RELEASE images: every release tags one image
    per suffix, and the provenance referrers of the newest releases are all still there."""
    run = _simulate(_policy(), earlier_matches_count=True, seed=4)
    repo = run["repo"]
    for n, (stage, keep) in enumerate(KEEP.items()):
        # Images whose fate the stage's own rule decides: released to it, and to no later stage.
        later = tuple(f"release-{s}-" for s in RELEASE_STAGES[n + 1 :])
        tagged = [
            i
            for i in repo.images.values()
            if any(t.startswith(f"release-{stage}-") for t in i.tags) and not any(t.startswith(later) for t in i.tags)
        ]
        assert len(tagged) <= keep * ARTIFACTS_PER_RELEASE
        provenance = [i for i in tagged if i.subject is not None]
        assert provenance and all(t.endswith(".prov") for i in provenance for t in i.tags)
        assert all(i.subject in repo.images for i in provenance)  # never a referrer without its image
    newest_prod = sorted({b.n: b for b in run["stages"]["prod"].history}.values(), key=lambda b: b.pushed_at)[
        -KEEP["prod"] :
    ]
    assert all(b.evidence()[3] in repo.images for b in newest_prod)


@pytest.mark.parametrize("earlier_matches_count", [True, False], ids=["later-rules-count-earlier", "they-do-not"])
def test_untagged_provenance_referrers_are_caught(earlier_matches_count: bool) -> None:
    """The promotion before provenance was tagged (image, .sig, .att only): the untagged-expiry rule deletes the
    provenance referrer of a running release a week after its build; the replay must see it."""
    run = _simulate(_policy(), earlier_matches_count=earlier_matches_count, seed=1, suffixes=("", ".sig", ".att"))
    assert any("runs or may roll back to" in v or "newest" in v for v in run["violations"])
    assert any(d.endswith("b40f") for v in run["violations"] for d in v.split() if d.startswith("sha256:"))


def test_the_largest_allowed_windows_fit_the_images_per_repository_quota() -> None:
    """ECR's "Images per repository" default quota is 10,000 (Amazon ECR User Guide, "Amazon ECR service quotas");
    past it a push fails. At the config bounds the tagged images the count rules keep (every stage's window plus
    the `any` window, none overlapping) must leave room for the untagged ones the age rule keeps."""
    kept = (len(RELEASE_STAGES) * registry.KEEP_RELEASES[1] + registry.KEEP_BUILDS[1]) * ARTIFACTS_PER_RELEASE
    assert kept <= 10_000 // 2
