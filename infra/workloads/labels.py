"""Label conventions: selectors are stable (never change after creation), `visionrag.io/role` groups a workload
with its canary for NetworkPolicies."""

from __future__ import annotations

PART_OF = "visionrag"
ROLE = "visionrag.io/role"


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def labels(name: str, role: str | None = None) -> dict[str, str]:
    return {**selector(name), ROLE: role or name, "app.kubernetes.io/managed-by": "pulumi"}


def role_selector(role: str) -> dict[str, str]:
    return {ROLE: role}
