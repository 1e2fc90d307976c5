"""Helm's coalescing as the pack models it, the stored chart defaults, and the real add-ons' merged values."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.workloads.addons import CHARTS
from policies.helm_values import CHARTS_DIR, chart_defaults, coalesce
from policies.rules.helm_releases import CHART_PODS, judge
from stacks.engine.offline import Record

RELEASE = "kubernetes:helm.sh/v3:Release"


# ---- coalesce: helm/helm pkg/chart/common/util/coalesce.go -------------------------------------------------
def test_maps_merge_deeply_and_user_values_win() -> None:
    defaults = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": "x"}
    assert coalesce({"a": {"c": {"d": 9}}}, defaults) == {"a": {"b": 1, "c": {"d": 9, "e": 3}}, "f": "x"}


def test_lists_are_replaced_never_merged() -> None:
    defaults = {"sc": {"capabilities": {"add": ["SYS_ADMIN"], "drop": []}}}
    assert coalesce({"sc": {"capabilities": {"drop": ["ALL"]}}}, defaults) == {
        "sc": {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}}
    }
    assert coalesce({"sc": {"capabilities": {"add": []}}}, defaults)["sc"]["capabilities"]["add"] == []


def test_user_null_deletes_a_default_and_chart_nulls_vanish() -> None:
    defaults = {"sc": {"capabilities": {"add": ["SYS_ADMIN"]}, "runAsUser": 0}, "empty": None}
    assert coalesce({"sc": {"capabilities": {"add": None}}}, defaults) == {"sc": {"capabilities": {}, "runAsUser": 0}}
    assert coalesce({"sc": None}, defaults) == {}


def test_type_mismatch_keeps_the_users_value_and_inputs_are_untouched() -> None:
    defaults = {"a": {"b": 1}, "c": "text"}
    mine = {"a": "scalar", "c": {"d": 1}}
    assert coalesce(mine, defaults) == {"a": "scalar", "c": {"d": 1}}
    assert defaults == {"a": {"b": 1}, "c": "text"} and mine == {"a": "scalar", "c": {"d": 1}}


# ---- the stored chart defaults ---------------------------------------------------------------------------
@pytest.mark.parametrize("release", sorted(CHARTS))
def test_every_pinned_chart_has_its_upstream_defaults(release: str) -> None:
    chart, version, _ = CHARTS[release]
    folder = CHARTS_DIR / f"{chart}-{version}"
    upstream = yaml.safe_load((folder / "values.yaml").read_text(encoding="utf-8"))
    assert json.loads((folder / "values.json").read_text(encoding="utf-8")) == upstream  # runtime copy in sync
    assert chart_defaults(chart, version) == upstream
    assert chart in CHART_PODS  # someone read the chart's templates and listed its pods


def test_stored_defaults_are_the_real_charts() -> None:
    """dcgm-exporter 4.1.3 ships `add: [SYS_ADMIN]` and runs as root: judged alone, its defaults fail."""
    defaults = chart_defaults("dcgm-exporter", "4.1.3")
    assert defaults is not None
    assert defaults["securityContext"]["capabilities"]["add"] == ["SYS_ADMIN"]
    # One finding names the kept capability and the remedy (lists replace on merge, maps merge).
    assert any("SYS_ADMIN" in f and "set `add: []`" in f for f in judge("dcgm-exporter", defaults))


# ---- the real program's releases, merged -----------------------------------------------------------------
def _releases(record: Record) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in record.of_type(RELEASE)}


def _merged(inputs: dict[str, Any]) -> dict[str, Any]:
    defaults = chart_defaults(inputs["chart"], inputs["version"])
    assert defaults is not None, f"no stored defaults for {inputs['chart']} {inputs['version']}"
    return coalesce(inputs["values"], defaults)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_merged_dcgm_values_carry_no_sys_admin(records: dict[str, Record], stack: str) -> None:
    merged = _merged(_releases(records[stack])["dcgm-exporter"])
    capabilities = merged["securityContext"]["capabilities"]
    assert "SYS_ADMIN" not in (capabilities.get("add") or [])
    assert capabilities["drop"] == ["ALL"] and merged["securityContext"]["privileged"] is False


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_real_release_passes_on_its_merged_values(records: dict[str, Record], stack: str) -> None:
    releases = _releases(records[stack])
    assert set(releases) >= {"aws-load-balancer-controller", "external-secrets", "dcgm-exporter"}
    findings = {name: list(judge(inputs["chart"], _merged(inputs))) for name, inputs in releases.items()}
    assert findings == {name: [] for name in releases}
