"""The custom resources we render validate against their CRD schemas; typos and bad enums are caught."""

from __future__ import annotations

import copy

import pytest

from infra.workloads.crd_schemas import SCHEMAS, validate
from stacks.engine.manifests import build_manifests
from stacks.engine.offline import Record


def _custom(record: Record) -> list[dict]:
    return [m.body for m in build_manifests(record).manifests if (m.api_version, m.kind) in SCHEMAS]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rendered_custom_resources_are_valid(wl_records: dict[str, Record], stack: str) -> None:
    bodies = _custom(wl_records[stack])
    admission = {"ClusterImagePolicy"} if stack != "dev" else set()  # signed-image admission: staging, prod
    assert {b["kind"] for b in bodies} == {"SecretStore", "ExternalSecret", "TargetGroupBinding", *admission}
    for body in bodies:
        assert validate(body) == [], body["metadata"]["name"]


def _tgb(wl_records: dict[str, Record]) -> dict:
    return copy.deepcopy(next(b for b in _custom(wl_records["prod"]) if b["kind"] == "TargetGroupBinding"))


def test_catches_a_misspelled_field(wl_records: dict[str, Record]) -> None:
    body = _tgb(wl_records)
    body["spec"]["targetGroupArn"] = body["spec"].pop("targetGroupARN")
    errors = validate(body)
    assert errors and any("targetGroupARN" in e for e in errors) and any("targetGroupArn" in e for e in errors)


def test_catches_a_bad_enum_and_a_missing_source(wl_records: dict[str, Record]) -> None:
    body = _tgb(wl_records)
    body["spec"]["targetType"] = "pod"
    assert any(e.startswith("spec.targetType") for e in validate(body) or [])
    es = copy.deepcopy(next(b for b in _custom(wl_records["prod"]) if b["kind"] == "ExternalSecret"))
    es["spec"].pop("data", None)
    es["spec"].pop("dataFrom", None)
    assert validate(es)


def test_unknown_kinds_are_not_claimed() -> None:
    assert validate({"apiVersion": "example.com/v1", "kind": "Widget"}) is None
