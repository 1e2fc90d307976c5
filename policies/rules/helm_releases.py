"""Helm releases, judged on what they render: the pinned chart's default values coalesced with ours.

A release's `values` alone say little: Helm deep-merges them over the chart's `values.yaml`, so a default such as
dcgm-exporter's `securityContext.capabilities.add: [SYS_ADMIN]` survives any values that only set `drop`. The
pack therefore holds each pinned chart version's defaults (policies/charts/) and judges the coalesced result
(policies/helm_values.py) for every pod the chart renders.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pulumi_policy import Policy, ResourceValidationArgs, Severity

from policies.helm_values import chart_defaults, coalesce
from policies.rules._base import Report, raw, resource_policy
from policies.rules.cluster import DEVICE_PLUGIN_CHARTS

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# Capabilities a non-root process may still need to bind a port below 1024; everything else is an escalation.
HARMLESS_CAPABILITIES = {"NET_BIND_SERVICE"}


@dataclass(frozen=True)
class ChartPod:
    """Where one pod of a chart takes its settings from in the chart's values (dotted paths)."""

    label: str
    pod_security: str | None
    container_security: str
    resources: str
    image: str  # the chart's image block: repository, tag (+ registry / digest / flavour where the chart has them)


def _pod(
    label: str, prefix: str = "", pod_security: str | None = "podSecurityContext", container: str = ""
) -> ChartPod:
    return ChartPod(
        label=label,
        pod_security=None if pod_security is None else prefix + pod_security,
        container_security=prefix + (container or "securityContext"),
        resources=prefix + "resources",
        image=prefix + "image",
    )


# The pods each reviewed chart renders (read from its templates at the pinned version).
CHART_PODS: dict[str, tuple[ChartPod, ...]] = {
    "aws-load-balancer-controller": (_pod("controller"),),
    "external-secrets": (_pod("controller"), _pod("webhook", "webhook."), _pod("cert-controller", "certController.")),
    "nvidia-device-plugin": (_pod("device-plugin"),),
    # cluster-autoscaler names its pod context `securityContext` and the container's `containerSecurityContext`.
    "cluster-autoscaler": (_pod("autoscaler", pod_security="securityContext", container="containerSecurityContext"),),
    "metrics-server": (_pod("metrics-server"),),
    "dcgm-exporter": (_pod("exporter"),),
    # policy-controller names the webhook pod's context `webhook.securityContext` and its container's
    # `webhook.podSecurityContext`; the post-delete lease cleanup Job has a container context only.
    "policy-controller": (
        _pod("webhook", "webhook.", pod_security="securityContext", container="podSecurityContext"),
        _pod("leases-cleanup", "leasescleanup.", pod_security=None, container="podSecurityContext"),
    ),
    "opentelemetry-collector": (_pod("collector"),),
}
# Node agents that must run as root, and why (everything else must be non-root). Root still gets no capability.
ROOT_AGENTS: dict[str, str] = {
    "dcgm-exporter": "reads the kubelet's root-only pod-resources socket to map GPUs to pods",
    "nvidia-device-plugin": "registers on the kubelet's root-owned device-plugins socket directory",
}


def _at(values: dict[str, Any], dotted: str) -> Any:
    cur: Any = values
    for key in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _rendered(context: Any) -> dict[str, Any]:
    """A security context as the chart renders it: charts that gate one on `enabled` (external-secrets,
    policy-controller) render nothing when it is false, whatever else the block holds."""
    if not isinstance(context, dict) or context.get("enabled") is False:
        return {}
    return context


def chart_image(merged: dict[str, Any], pod: ChartPod) -> str | None:
    """The image reference a pod of the chart pulls, or None when our values leave the tag to the chart's
    appVersion (then nobody reviewed, scanned or pinned it: `judge` reports it)."""
    block = _at(merged, pod.image)
    # policy-controller calls the tag `version`, and a `sha256:` version is a digest (its _helpers.tpl).
    tag = block.get("tag") or block.get("version") if isinstance(block, dict) else None
    if not isinstance(block, dict) or not block.get("repository") or not tag:
        return None
    ref = str(block["repository"])
    if block.get("registry"):
        ref = f"{block['registry']}/{ref}"
    ref += f"@{tag}" if str(tag).startswith("sha256:") else f":{tag}"
    if block.get("flavour"):  # external-secrets appends `-<flavour>` to the tag
        ref += f"-{block['flavour']}"
    if block.get("digest"):
        ref += f"@{block['digest']}"
    return ref


def judge(chart: str, merged: dict[str, Any]) -> Iterator[str]:
    """Every finding on one chart's coalesced values (pure: the tests call it on chart defaults directly)."""
    for pod in CHART_PODS[chart]:
        sc = _rendered(_at(merged, pod.container_security))
        pod_sc = _rendered(_at(merged, pod.pod_security) if pod.pod_security else None)
        where = f"{chart} {pod.label}"
        if chart_image(merged, pod) is None:
            yield (
                f"{where}: {pod.image}.tag is not set in our values, so the chart's appVersion picks the image; "
                "pin it (the third-party image scan lists images from our values: python -m stacks images)"
            )
        added = [c for c in _strings(_at(sc, "capabilities.add")) if c not in HARMLESS_CAPABILITIES]
        if added:
            yield (
                f"{where}: {pod.container_security}.capabilities.add keeps {added} after Helm merges the chart "
                "defaults (set `add: []`: lists replace, maps merge)"
            )
        if "ALL" not in _strings(_at(sc, "capabilities.drop")):
            yield f"{where}: {pod.container_security}.capabilities.drop does not include ALL"
        if sc.get("privileged") is True:
            yield f"{where}: {pod.container_security}.privileged is true"
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"{where}: {pod.container_security}.allowPrivilegeEscalation is not false"
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
        if not non_root and chart not in ROOT_AGENTS:
            yield f"{where}: runAsNonRoot is not true"
        requests = _at(merged, f"{pod.resources}.requests") or {}
        missing = [r for r in ("cpu", "memory") if not requests.get(r)]
        if missing:
            yield f"{where}: {pod.resources}.requests has no {'/'.join(missing)}"


def _merged_values(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != HELM_RELEASE:
        return
    props = raw(args.props)
    chart, version = str(props.get("chart") or ""), str(props.get("version") or "")
    if chart not in CHART_PODS:
        report(
            f"chart {chart!r} has not been reviewed: add its pods to policies/rules/helm_releases.py CHART_PODS "
            "and its default values under policies/charts/"
        )
        return
    if not version:
        # The device plugin's pin is gpu-device-plugin's verdict (one owner per finding); any other chart
        # unpinned renders whatever is newest, whose defaults nobody reviewed.
        if chart not in DEVICE_PLUGIN_CHARTS:
            report(f"chart {chart} is not pinned to a version: its defaults cannot be reviewed")
        return
    defaults = chart_defaults(chart, version)
    if defaults is None:
        report(
            f"chart {chart} {version}: the pack holds no default values for this version; add the upstream "
            f"values.yaml (and values.json) under policies/charts/{chart}-{version}/ so the merged values are judged"
        )
        return
    values = props.get("values")
    for finding in judge(chart, coalesce(values if isinstance(values, dict) else {}, defaults)):
        report(finding)


POLICIES: list[Policy] = [
    resource_policy(
        name="helm-merged-values-hardened",
        description="Every Helm release is a reviewed chart at a version whose defaults the pack holds, and its "
        "values coalesced over those defaults (Helm's merge) add no capability, drop ALL, are not privileged, "
        "forbid privilege escalation, run as non-root (listed node agents excepted) and request cpu and memory.",
        severity=Severity.HIGH,
        remediation="Override the chart default in the release values (a list is replaced whole, e.g. "
        "`capabilities: {drop: [ALL], add: []}`; `null` deletes a key); when bumping a chart, add its upstream "
        "values.yaml and values.json under policies/charts/<chart>-<version>/.",
        validate=_merged_values,
        tags=["kubernetes", "pod-security", "supply-chain"],
    ),
]
