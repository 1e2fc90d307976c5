"""Kubernetes workloads of visionrag: typed pulumi_kubernetes objects in our own components (issue 4)."""

from infra.workloads.args import WorkloadsArgs
from infra.workloads.spec import WorkloadSpec
from infra.workloads.workloads import Workloads

__all__ = ["WorkloadSpec", "Workloads", "WorkloadsArgs"]
