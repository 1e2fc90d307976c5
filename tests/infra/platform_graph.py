"""Helpers for the platform tests (cluster, node groups, edge, cache, observability): walk the recorded graph."""

from __future__ import annotations

import json
from typing import Any

from stacks.engine.offline import Record, RecordedResource

STACKS = ("dev", "staging", "prod")


def component(record: Record, type_: str, name: str | None = None) -> RecordedResource:
    found = [r for r in record.resources if r.type == type_ and (name is None or r.name == name)]
    if len(found) != 1:
        raise KeyError(f"expected one {type_} {name or ''}, found {len(found)}")
    return found[0]


def descendants(record: Record, root: RecordedResource) -> list[RecordedResource]:
    out: list[RecordedResource] = []
    frontier = [root.urn]
    while frontier:
        urn = frontier.pop()
        for r in record.children(urn):
            out.append(r)
            frontier.append(r.urn)
    return out


def under(record: Record, root: RecordedResource, type_: str) -> list[RecordedResource]:
    return sorted((r for r in descendants(record, root) if r.type == type_), key=lambda r: r.name)


def key_arn(record: Record, purpose: str) -> str:
    arn = record.outputs["kmsKeyArns"][purpose]
    assert isinstance(arn, str) and arn.startswith("arn:aws:kms:")
    return arn


def policy(resource: RecordedResource, prop: str = "policy") -> dict[str, Any]:
    doc = resource.inputs[prop]
    return json.loads(doc) if isinstance(doc, str) else doc


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# One edited dev stack shared by the tests that need non-default settings (record_of caches it: one run).
ADMIN_ROLE = "arn:aws:iam::123456789012:role/platform-admins"
CANARY = {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-api:0.2.0", "weight": 15}
EDITED_DEV = {
    "visionrag:cluster": {
        "adminRoleArns": [ADMIN_ROLE],
        "gpuNodes": {"instanceTypes": ["g6e.12xlarge"], "amiType": "BOTTLEROCKET_x86_64_NVIDIA"},
    },
    "visionrag:workloads": {"canary": CANARY},
}
