"""Availability: zone spread, anti-affinity and PodDisruptionBudgets.

Spread is ScheduleAnyway across zones and hosts for stateless pods: a zone outage must not block rescheduling
into the remaining zones. Qdrant (zonal EBS volumes) gets *required* host anti-affinity so two replicas of a
shard never share a node.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.labels import labels, selector

ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


def spread(name: str) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(name)),
        )
        for key in (ZONE_KEY, HOST_KEY)
    ]


def required_host_anti_affinity(name: str) -> k8s.core.v1.PodAntiAffinityArgs:
    return k8s.core.v1.PodAntiAffinityArgs(
        required_during_scheduling_ignored_during_execution=[
            k8s.core.v1.PodAffinityTermArgs(
                topology_key=HOST_KEY,
                label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(name)),
            )
        ]
    )


def needs_pdb(replicas: int, max_replicas: int | None) -> bool:
    return replicas > 1 or (max_replicas or 0) > 1


def disruption_budget(
    resource_name: str,
    *,
    workload: str,
    namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> k8s.policy.v1.PodDisruptionBudget:
    # maxUnavailable 1 (not minAvailable N): node drains make progress one pod at a time however the HPA has
    # scaled, and a stuck single replica cannot block a drain forever.
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=workload, namespace=namespace, labels=labels(workload)),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(workload)),
            unhealthy_pod_eviction_policy="AlwaysAllow",
        ),
        opts=opts,
    )
