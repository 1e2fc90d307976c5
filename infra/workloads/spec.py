"""WorkloadSpec: what the stack config says about one workload (the program maps config onto it)."""

from __future__ import annotations

from dataclasses import dataclass

from infra.workloads.container import Resources


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    image: str
    replicas: int
    resources: Resources
    max_replicas: int | None = None

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"WorkloadSpec.replicas: must be >= 0 (got {self.replicas})")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"WorkloadSpec.max_replicas: {self.max_replicas} is below replicas {self.replicas}")
