"""Every container image a stack runs: the inventory CI scans (`python -m stacks images <stack>`).

Two sources, read from the offline run (no cluster, no Helm): the pod templates of the Kubernetes objects the
program declares (containers and init containers of Deployments, StatefulSets, DaemonSets, Jobs and CronJobs), and
the Helm releases' images, read at the place each reviewed chart takes its image from
(policies/rules/helm_releases.py `CHART_PODS`) in the values Helm will render (our values coalesced over the
pinned chart's defaults). The policy `helm-merged-values-hardened` refuses a chart image whose rendered tag is
empty (the chart would fall back to its appVersion), so every reference here is a concrete one: a tag our values
set, or one the chart's own defaults name (which may still float, e.g. a `latest-dev`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.helm_values import chart_defaults, coalesce
from policies.rules._base import get
from policies.rules.helm_releases import CHART_PODS, HELM_RELEASE, chart_image

# A pod template is at spec.template (Deployment, StatefulSet, DaemonSet, Job) or one level deeper (CronJob).
_POD_SPEC_PATHS = (("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec"))
_ECR = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/")


@dataclass(frozen=True, order=True)
class ImageUse:
    image: str
    source: str  # "<Kind>/<name> <container>" or "helm <chart> <pod>"

    @property
    def project(self) -> bool:
        """Built by this project (ECR): scanned, signed and attested by the image jobs of ci.yml."""
        return bool(_ECR.match(self.image))


def pod_images(kind: str, name: str, body: Mapping[str, Any]) -> Iterator[ImageUse]:
    for path in _POD_SPEC_PATHS:
        spec = get(body, *path)
        if not isinstance(spec, Mapping):
            continue
        for field in ("initContainers", "containers"):
            for container in spec.get(field) or []:
                image = container.get("image") if isinstance(container, Mapping) else None
                if isinstance(image, str) and image:
                    yield ImageUse(image, f"{kind}/{name} {container.get('name', '?')}")


def release_images(chart: str, version: str, values: Mapping[str, Any] | None) -> Iterator[ImageUse]:
    defaults = chart_defaults(chart, version)
    if chart not in CHART_PODS or defaults is None:
        raise ValueError(
            f"helm chart {chart} {version}: not reviewed (policies/rules/helm_releases.py CHART_PODS and "
            f"policies/charts/{chart}-{version}/): its images cannot be listed"
        )
    merged = coalesce(values or {}, defaults)
    for pod in CHART_PODS[chart]:
        image = chart_image(merged, pod)
        if image is not None:
            yield ImageUse(image, f"helm {chart} {pod.label}")


def stack_images(resources: Iterable[Mapping[str, Any]]) -> list[ImageUse]:
    """Every image use in a plan's `resources` (each: type, name, inputs), sorted, duplicates kept per source."""
    uses: set[ImageUse] = set()
    for r in resources:
        inputs = r.get("inputs") or {}
        if r.get("type") == HELM_RELEASE:
            uses.update(release_images(str(inputs.get("chart")), str(inputs.get("version")), inputs.get("values")))
        elif str(r.get("type", "")).startswith("kubernetes:"):
            kind = str(r["type"]).rsplit(":", 1)[-1]
            name = get(inputs, "metadata", "name") or r.get("name")
            uses.update(pod_images(kind, str(name), inputs))
    return sorted(uses)


def third_party(uses: Iterable[ImageUse]) -> list[str]:
    """The distinct images this project does not build: what the third-party scan job scans."""
    return sorted({u.image for u in uses if not u.project})
