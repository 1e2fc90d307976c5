"""`pulumi up` never waits unboundedly, nor on a workload that cannot be ready on a fresh account."""

from __future__ import annotations

from typing import Any

import pytest

from infra.workloads.await_policy import MAX_TIMEOUT_S, SKIP_AWAIT_ANNOTATION, TIMEOUT_ANNOTATION, AwaitPolicy
from stacks.engine.offline import Record, RecordedResource
from tests.infra.workloads.graph import DEPLOYMENT, STATEFULSET, containers, name, pod_template

STACKS = ("dev", "staging", "prod")


def _needs_gpu_or_weights(r: RecordedResource) -> bool:
    """Readiness that depends on a GPU node (scaled from zero) or on model weights in the models bucket."""
    pod = pod_template(r)
    for c in containers(pod):
        limits = (c.get("resources") or {}).get("limits") or {}
        env = {e["name"] for e in c.get("env") or []}
        if "nvidia.com/gpu" in limits or "MODEL_BUCKET" in env:
            return True
    return False


def _workloads(record: Record) -> list[RecordedResource]:
    return [*record.of_type(DEPLOYMENT), *record.of_type(STATEFULSET)]


def _annotations(r: RecordedResource) -> dict[str, Any]:
    return dict(r.inputs["metadata"].get("annotations") or {})


@pytest.mark.parametrize("stack", STACKS)
def test_every_rollout_wait_is_explicit_and_bounded(records: dict[str, Record], stack: str) -> None:
    workloads = _workloads(records[stack])
    assert {"api", "worker", "embedder", "qdrant"} <= {name(r) for r in workloads}
    for r in workloads:
        notes = _annotations(r)
        present = {TIMEOUT_ANNOTATION, SKIP_AWAIT_ANNOTATION} & set(notes)
        assert len(present) == 1, f"{name(r)}: states no (or two) await policies: {notes}"
        if TIMEOUT_ANNOTATION in notes:
            assert 60 <= int(notes[TIMEOUT_ANNOTATION]) <= MAX_TIMEOUT_S, name(r)
        else:
            assert notes[SKIP_AWAIT_ANNOTATION] == "true", name(r)


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_and_model_workloads_never_block_up(records: dict[str, Record], stack: str) -> None:
    """A GPU node from zero, a multi-GB image and weights uploaded after the first `up`: not `up`'s to wait on."""
    slow = [r for r in _workloads(records[stack]) if _needs_gpu_or_weights(r)]
    assert [name(r) for r in slow] == ["embedder"]
    for r in slow:
        assert _annotations(r).get(SKIP_AWAIT_ANNOTATION) == "true", name(r)
    # Everything else is awaited: the api must be ready before its TargetGroupBinding, Qdrant before its clients.
    for r in _workloads(records[stack]):
        if r not in slow:
            assert TIMEOUT_ANNOTATION in _annotations(r), name(r)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"timeout_s": 900, "skip_reason": "x"},
        {"timeout_s": 30},
        {"timeout_s": MAX_TIMEOUT_S + 1},
        {"skip_reason": " "},
    ],
)
def test_await_policy_refuses_unbounded_or_unexplained(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="AwaitPolicy"):
        AwaitPolicy(**kwargs)
