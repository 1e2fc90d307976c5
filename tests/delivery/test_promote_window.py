"""The promotion window under moto ECR, with the repositories' real lifecycle policy (infra/registry.py): a digest
that K or more newer-built digests already released to the stage push out of the stage's window (the lifecycle
counts by first push time) is refused, exit 2, naming image and reason, with nothing tagged or written; inside the
window (a rollback one release back included) it is promoted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from infra.registry import RELEASE_TAG_PREFIX, lifecycle_policy
from policies.ecr_lifecycle import Image
from stacks.supply_chain.refs import ImageRef
from stacks.supply_chain.retention import window_problem
from tests.delivery.oci_fixtures import REPOS, Blobs, release, tags_of
from tests.delivery.test_promote_provenance import _Clock, clock
from tests.delivery.test_promote_registry import release_tags, root, run

__all__ = ["clock", "root"]  # fixtures shared with the other promotion tests

KEEP = {"dev": 2, "staging": 2, "prod": 3}


@pytest.fixture
def lifecycle(ecr: Any) -> dict[str, int]:
    for repo in REPOS:
        ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=lifecycle_policy(KEEP, 5, 7))
    return KEEP


def builds(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, n: int) -> list[dict[str, ImageRef]]:
    """`n` CI builds of every image, oldest first (each pushed a few minutes after the one before)."""
    return [
        {repo.removeprefix("visionrag-"): release(ecr, blobs, repo, f"{repo} v{i}", key) for repo in REPOS}
        for i in range(n)
    ]


def stage_tags(ecr: Any, stage: str) -> list[str]:
    return [t for t in release_tags(ecr) if t.startswith(f"{RELEASE_TAG_PREFIX}{stage}-")]


def test_a_digest_behind_k_newer_releases_is_refused(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock],
    lifecycle: dict[str, int], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    old, *newer = builds(ecr, blobs, key, 1 + lifecycle["staging"])
    for b in newer:
        assert run(root, key, b) == 0
    before_file, before_tags = (root / "Pulumi.staging.yaml").read_text(), release_tags(ecr)
    capsys.readouterr()

    assert run(root, key, old) == 2

    err = capsys.readouterr().err
    assert "refused, nothing tagged or written" in err
    for name, ref in old.items():
        assert f"{name}: {ref}: outside the staging retention window: 2 digest(s) built after it" in err
        assert "keeps the newest 2" in err
    assert (root / "Pulumi.staging.yaml").read_text() == before_file
    assert release_tags(ecr) == before_tags


def test_one_digest_outside_the_window_refuses_all_and_names_only_it(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock],
    lifecycle: dict[str, int], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    old, *newer = builds(ecr, blobs, key, 1 + lifecycle["staging"])
    for b in newer:
        assert run(root, key, b) == 0
    before = release_tags(ecr)
    capsys.readouterr()
    mixed = {**newer[-1], "worker": old["worker"]}

    assert run(root, key, mixed) == 2

    err = capsys.readouterr().err
    assert f"worker: {old['worker']}: outside the staging retention window" in err
    assert "api:" not in err and "frontend:" not in err
    assert release_tags(ecr) == before


def test_inside_the_window_rollbacks_and_other_stages_are_promoted(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock],
    lifecycle: dict[str, int],
) -> None:  # fmt: skip
    old, mid, new = builds(ecr, blobs, key, 3)
    assert run(root, key, mid) == 0
    assert run(root, key, old) == 0  # one newer release (mid) < keepReleases.staging = 2
    assert run(root, key, new) == 0
    assert run(root, key, mid) == 0  # a rollback: one digest (new) was built after it
    # prod's own window: nothing is released to prod yet, so even the oldest build may go there.
    assert run(root, key, old, stack="prod") == 0
    assert len(stage_tags(ecr, "prod")) == 4 * 4
    # Every promotion tagged the image, .sig, .att and .prov, and no tag ever moved.
    assert len(stage_tags(ecr, "staging")) == 4 * 4 * 4


def test_the_boundary_is_exactly_k_newer_releases(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock],
    lifecycle: dict[str, int],
) -> None:  # fmt: skip
    """K-1 newer releases: the digest is the oldest one the window keeps; K: it would be the first to go."""
    k = lifecycle["prod"]
    b = builds(ecr, blobs, key, k + 1)
    for build in b[2:]:
        assert run(root, key, build, stack="prod") == 0
    assert run(root, key, b[1], stack="prod") == 0  # k-1 newer
    assert run(root, key, b[0], stack="prod") == 2  # k newer (b[1] is now released too)


def test_without_a_lifecycle_policy_nothing_expires_so_nothing_is_outside(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock]
) -> None:
    old, *newer = builds(ecr, blobs, key, 4)
    for b in newer:
        assert run(root, key, b) == 0
    assert run(root, key, old) == 0
    assert all(
        any(t.startswith("release-staging-") for t in tags_of(ecr, r.repository)[r.digest]) for r in old.values()
    )


def test_a_lifecycle_policy_the_evaluator_cannot_read_refuses() -> None:
    """A rule this evaluator does not model (ECR's newer `sinceImagePulled`) cannot be shown to keep the release:
    refused, not guessed."""
    rule = {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days",
            "countNumber": 30}, "action": {"type": "expire"}}  # fmt: skip
    at = datetime(2026, 6, 1, tzinfo=UTC)
    digest = "sha256:" + "a" * 64
    why = window_problem(
        stage="prod", digest=digest, planned={digest: "release-prod-20260601T000000Z"},
        images=[Image(digest, frozenset({"abc"}), at)], policy={"rules": [rule]}, now=at,
    )  # fmt: skip
    assert why is not None and "lifecycle policy cannot be evaluated" in why


def test_a_digest_a_later_stage_keeps_may_go_back_through_an_earlier_stage(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock],
    lifecycle: dict[str, int],
) -> None:  # fmt: skip
    """A prod rollback passes dev again: dev's window is full of newer builds, but the image carries a prod tag, and
    the prod rule (first) decides for it, so the lifecycle keeps it; plain counting would refuse it wrongly."""
    (root / "Pulumi.dev.yaml").write_text((root / "Pulumi.staging.yaml").read_text())
    old, *newer = builds(ecr, blobs, key, 1 + lifecycle["dev"])
    assert run(root, key, old, stack="prod") == 0
    for b in newer:
        assert run(root, key, b, stack="dev") == 0
    assert run(root, key, old, stack="dev") == 0
    assert any(t.startswith("release-dev-") for t in tags_of(ecr, old["api"].repository)[old["api"].digest])
