"""ci.yml scans every image the stacks run: the project's four and every third-party image (Qdrant, add-ons),
with one reviewed ignore file, and a fixable critical blocks the release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
JOBS: dict[str, Any] = CI["jobs"]
TRIVY = "aquasecurity/trivy-action@"


def _trivy_steps() -> list[tuple[str, dict[str, Any]]]:
    return [(name, s) for name, job in JOBS.items() for s in job["steps"] if str(s.get("uses", "")).startswith(TRIVY)]


def test_the_third_party_list_comes_from_every_stacks_offline_run() -> None:
    job = JOBS["third-party-images"]
    listing = next(s for s in job["steps"] if s.get("id") == "list")["run"]
    assert "python -m stacks images" in listing and "--third-party" in listing
    assert "for stack in dev staging prod" in listing
    assert "length > 0" in listing  # an empty list is a broken inventory, not a clean scan
    assert job["outputs"]["images"] == "${{ steps.list.outputs.images }}"
    assert any("check_trivyignore.py .trivyignore.yaml" in str(s.get("run", "")) for s in job["steps"])


def test_each_listed_image_is_scanned_and_fails_on_fixable_criticals() -> None:
    scan = JOBS["third-party-scan"]
    assert scan["needs"] == "third-party-images"
    assert scan["strategy"]["matrix"]["image"] == "${{ fromJSON(needs.third-party-images.outputs.images) }}"
    assert scan["strategy"]["fail-fast"] is False
    (step,) = [s for s in scan["steps"] if str(s.get("uses", "")).startswith(TRIVY)]
    w = step["with"]
    assert w["image-ref"] == "${{ matrix.image }}"
    assert "CRITICAL" in w["severity"] and w["ignore-unfixed"] is True and w["exit-code"] == "1"


def test_every_scan_reads_the_one_reviewed_ignore_file() -> None:
    steps = _trivy_steps()
    assert {name for name, _ in steps} >= {"images-pr", "images-release", "third-party-scan"}
    assert all(s["with"].get("trivyignores") == ".trivyignore.yaml" for _, s in steps)
    assert (ROOT / ".trivyignore.yaml").is_file()


def test_a_failed_third_party_scan_blocks_the_release() -> None:
    assert "third-party-scan" in JOBS["images-release"]["needs"]


def test_every_image_build_stamps_the_commit_time_for_reproducible_digests() -> None:
    for name in ("images-pr", "images-release"):
        steps = JOBS[name]["steps"]
        build = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("docker/build-push-action@"))
        stamps = [i for i, s in enumerate(steps) if "SOURCE_DATE_EPOCH=$(git log -1 --pretty=%ct)" in s.get("run", "")]
        assert stamps and stamps[0] < build, name
