"""The image inventory CI scans: every image a stack runs, from its pods and its Helm releases' rendered values."""

from __future__ import annotations

from typing import Any

import pytest

from infra.workloads.addons import CHARTS
from stacks.engine.images import ImageUse, pod_images, release_images, stack_images, third_party

STACKS = ("dev", "staging", "prod")


def _kubernetes_images(plan: dict[str, Any]) -> set[str]:
    """Independently of the module: every `image` string anywhere in a Kubernetes object's inputs."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "image" and isinstance(item, str):
                    found.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for r in plan["resources"]:
        if r["type"].startswith("kubernetes:") and r["type"] != "kubernetes:helm.sh/v3:Release":
            walk(r["inputs"])
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_image_of_the_stack_is_listed(plans: dict[str, dict[str, Any]], stack: str) -> None:
    listed = {u.image for u in stack_images(plans[stack]["resources"])}
    assert _kubernetes_images(plans[stack]) <= listed


@pytest.mark.parametrize("stack", STACKS)
def test_every_helm_release_contributes_its_images(plans: dict[str, dict[str, Any]], stack: str) -> None:
    uses = stack_images(plans[stack]["resources"])
    releases = {r["inputs"]["chart"] for r in plans[stack]["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"}
    charts_listed = {u.source.split()[1] for u in uses if u.source.startswith("helm ")}
    assert releases and releases == charts_listed
    # Every chart image is a concrete reference: a tag our values set, never the chart's appVersion fallback.
    assert all(":" in u.image.rsplit("/", 1)[-1] or "@sha256:" in u.image for u in uses)


def test_third_party_images_are_qdrant_and_the_add_ons_never_our_own(plans: dict[str, dict[str, Any]]) -> None:
    uses = stack_images(plans["prod"]["resources"])
    scanned = third_party(uses)
    assert any("qdrant/qdrant" in image for image in scanned)
    assert any("external-secrets" in image for image in scanned)
    assert not [i for i in scanned if ".dkr.ecr." in i and "/visionrag-" in i]
    ours = {u.image for u in uses if u.project}
    assert {i.split("@")[0].rsplit("/", 1)[-1] for i in ours} >= {"visionrag-api", "visionrag-worker"}


def test_cronjob_and_init_containers_are_read() -> None:
    body = {
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "initContainers": [{"name": "init", "image": "a/b:1"}],
                            "containers": [{"name": "main", "image": "c/d:2"}],
                        }
                    }
                }
            }
        }
    }
    assert set(pod_images("CronJob", "job", body)) == {
        ImageUse("a/b:1", "CronJob/job init"),
        ImageUse("c/d:2", "CronJob/job main"),
    }


def test_a_chart_tag_left_to_the_chart_is_not_listed_as_if_known() -> None:
    chart, version, _ = CHARTS["metrics-server"]
    assert [u.image for u in release_images(chart, version, {"image": {"tag": "v0.7.2"}})] == [
        "registry.k8s.io/metrics-server/metrics-server:v0.7.2"
    ]
    # Without our tag the chart's appVersion decides: nothing concrete to scan (the policy blocks this case).
    assert list(release_images(chart, version, {})) == []


def test_an_unreviewed_chart_cannot_be_listed() -> None:
    with pytest.raises(ValueError, match="not reviewed"):
        list(release_images("some-chart", "1.0.0", {}))
