"""Helm's value coalescing, so the pack judges what a release really renders: chart defaults + our values.

`helm install/upgrade` coalesces the user's values over the chart's `values.yaml` (helm/helm
pkg/chart/common/util/coalesce.go, `CoalesceValues` -> `coalesceValues` / `coalesceTablesFullKey`):
- maps merge key by key, recursively; the user's value wins for every key both define;
- lists and scalars are never merged: the user's value replaces the default whole (so `add: []` removes a
  default capability list, while leaving `add` out keeps the chart's `add: [SYS_ADMIN]`);
- a user `null` deletes the key, the chart default included; `null`s left in the chart's own defaults are dropped;
- a user scalar where the default is a map (or the reverse) keeps the user's value (Helm warns and skips).
Subcharts and globals are not modelled: none of the pinned add-on charts has dependencies the values reach.

The chart defaults live next to this module in `charts/<chart>-<version>/values.json`, converted from the
upstream `values.yaml` kept beside it (tests/policies/test_helm_values.py asserts the two agree), so the pack needs
no YAML parser at runtime.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

CHARTS_DIR = Path(__file__).resolve().parent / "charts"


def coalesce(values: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values a release renders with: `values` (the user's, higher precedence) over the chart `defaults`.

    Neither argument is modified."""
    dst: dict[str, Any] = copy.deepcopy(dict(values or {}))
    src: dict[str, Any] = copy.deepcopy(dict(defaults or {}))
    _drop_nulls(src)
    return _coalesce_tables(dst, src)


def _coalesce_tables(dst: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    for key, default in src.items():
        if key not in dst:
            dst[key] = default
            continue
        mine = dst[key]
        if mine is None:
            # The user nulls a chart default: the key disappears from the rendered values.
            del dst[key]
        elif isinstance(mine, dict) and isinstance(default, dict):
            _coalesce_tables(mine, default)
        # Otherwise (list, scalar, or a type mismatch) the user's value stands as given.
    for key in [k for k, v in dst.items() if v is None]:
        del dst[key]  # a user null for a key the chart does not define renders as absent too
    return dst


def _drop_nulls(table: dict[str, Any]) -> None:
    for key in list(table):
        value = table[key]
        if value is None:
            del table[key]
        elif isinstance(value, dict):
            _drop_nulls(value)


def chart_dir(chart: str, version: str) -> Path:
    return CHARTS_DIR / f"{chart}-{version}"


@cache
def _load(chart: str, version: str) -> str | None:
    path = chart_dir(chart, version) / "values.json"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def chart_defaults(chart: str, version: str) -> dict[str, Any] | None:
    """The pinned chart version's default values; None when the pack does not hold them (a chart bump must add
    them: the pack then reports the release instead of judging half of its values)."""
    text = _load(chart, version)
    return None if text is None else json.loads(text)
