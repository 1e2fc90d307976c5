"""Kubernetes workloads of visionrag: typed pulumi_kubernetes objects in our own components (issue 4)."""

from infra.workloads.spec import WorkloadSpec
from infra.workloads.workloads import Workloads, WorkloadsArgs

__all__ = ["WorkloadSpec", "Workloads", "WorkloadsArgs"]
