"""The OTLP collector release as Helm and the collector will see it: the pinned chart's defaults merged with our
values (policies/helm_values.py), judged by the pack's `helm-merged-values-hardened` rule, and a collector
configuration whose pipelines name only components it defines (the collector refuses to start otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.workloads.addons import CHARTS
from infra.workloads.otel_collector import (
    IMAGE,
    RELEASE,
    SERVICE,
    collector_config,
    collector_values,
    endpoint,
    pod_selector,
)
from policies.helm_values import chart_defaults, coalesce
from policies.rules.helm_releases import CHART_PODS, chart_image, judge

CHART, VERSION, _ = CHARTS[RELEASE]


def _merged(values: dict[str, Any]) -> dict[str, Any]:
    defaults = chart_defaults(CHART, VERSION)
    assert defaults is not None, "policies/charts/ must hold the pinned chart's values"
    return coalesce(values, defaults)


def _ours() -> dict[str, Any]:
    return collector_values(region="eu-west-1", service_account="otel-collector", replicas=2)


def test_our_values_pass_the_hardening_rule_and_the_chart_defaults_do_not() -> None:
    assert list(judge(CHART, _merged(_ours()))) == []
    # The guard would catch a release that left the chart's defaults in place: no security contexts, no
    # resources, the image chosen by appVersion.
    findings = list(judge(CHART, _merged({"mode": "deployment"})))
    assert any("runAsNonRoot" in f for f in findings)
    assert any("capabilities.drop" in f for f in findings)
    assert any("requests" in f for f in findings)
    assert any("tag is not set" in f for f in findings)


def test_the_rendered_pod_is_non_root_read_only_and_pinned() -> None:
    merged = _merged(_ours())
    container = merged["securityContext"]
    assert container["readOnlyRootFilesystem"] is True and container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert merged["podSecurityContext"]["runAsNonRoot"] is True and merged["podSecurityContext"]["runAsUser"] > 0
    repository, tag, digest = IMAGE
    [pod] = CHART_PODS[CHART]
    assert chart_image(merged, pod) == f"{repository}:{tag}@{digest}"
    # The chart renders repository@digest when a digest is set (templates/_pod.tpl).
    assert merged["image"]["digest"] == digest


def test_only_otlp_ports_are_opened() -> None:
    merged = _merged(_ours())
    enabled = {name: p["containerPort"] for name, p in merged["ports"].items() if p.get("enabled")}
    assert enabled == {"otlp": 4317, "otlp-http": 4318}


def test_the_chart_defaults_config_is_not_merged_into_ours() -> None:
    # `alternateConfig` is used whole; `config` would be deep-merged with the chart's jaeger/zipkin/prometheus
    # receivers and the debug exporter (values.yaml `config`).
    merged = _merged(_ours())
    assert merged["alternateConfig"] == collector_config("eu-west-1")
    assert "jaeger" in merged["config"]["receivers"]  # what alternateConfig keeps out of the collector
    # The chart refuses to render without health_check in `config.service.extensions` (NOTES.txt).
    assert "health_check" in merged["config"]["service"]["extensions"]


def _components(config: dict[str, Any], kind: str) -> set[str]:
    return set(config.get(kind) or {})


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_every_pipeline_component_is_defined(region: str) -> None:
    config = collector_config(region)
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            missing = set(pipeline[kind]) - _components(config, kind)
            assert not missing, f"pipeline {name}: {kind} {missing} are not defined"
        # memory_limiter must come first: it refuses data before anything else buffers it.
        assert pipeline["processors"][0] == "memory_limiter"
    assert set(config["service"]["extensions"]) <= _components(config, "extensions")
    assert config["exporters"]["awsxray"]["region"] == region


def test_indexed_attributes_name_the_apps_resource_attributes_as_the_exporter_sees_them() -> None:
    # The exporter indexes a resource attribute only as `otel.resource.<key>` (awsxrayexporter translator
    # segment.go); the bare key would index nothing, since the apps set it on the Resource, not on spans.
    source = Path(__file__).parents[3].joinpath("app/core/telemetry.py").read_text()
    indexed = collector_config("eu-west-1")["exporters"]["awsxray"]["indexed_attributes"]
    assert indexed == ["otel.resource.deployment.environment"]
    for name in indexed:
        key = name.removeprefix("otel.resource.")
        assert f'"{key}":' in source, f"the apps no longer set resource attribute {key}"


def test_the_apps_endpoint_is_the_charts_service() -> None:
    assert endpoint("visionrag-system") == f"http://{SERVICE}.visionrag-system.svc.cluster.local:4318"
    merged = _merged(_ours())
    assert merged["fullnameOverride"] == SERVICE
    # The NetworkPolicy selects the chart's pods by its selector labels (_helpers.tpl selectorLabels).
    assert pod_selector() == {"app.kubernetes.io/name": CHART, "app.kubernetes.io/instance": RELEASE}
    assert not merged["nameOverride"]
