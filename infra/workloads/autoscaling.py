"""HorizontalPodAutoscalers (autoscaling/v2) on CPU utilisation from metrics-server.

Choice: CPU for the api (request handling, JSON, JWT, image URL signing all scale with CPU) and for the embedder
too. GPU utilisation would be the better embedder signal, but it needs DCGM exporter + a custom-metrics adapter
(another privileged DaemonSet and an aggregated API); queue depth needs KEDA. The embedder's request path
(image decode, processor, tensor copies, pooling) burns a CPU core per in-flight batch, so CPU tracks load well
enough. Scale-down is slow (10 minutes stabilisation) because a new embedder pod costs a model load.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.labels import labels

TARGET_CPU_PERCENT = 70


def cpu_autoscaler(
    resource_name: str,
    *,
    workload: str,
    namespace: pulumi.Input[str],
    min_replicas: int,
    max_replicas: int,
    scale_down_stabilization_s: int,
    opts: pulumi.ResourceOptions,
) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    if not 1 <= min_replicas <= max_replicas:
        raise ValueError(f"{workload}: need 1 <= minReplicas ({min_replicas}) <= maxReplicas ({max_replicas})")
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=workload, namespace=namespace, labels=labels(workload)),
        spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                api_version="apps/v1", kind="Deployment", name=workload
            ),
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            metrics=[
                k8s.autoscaling.v2.MetricSpecArgs(
                    type="Resource",
                    resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                        name="cpu",
                        target=k8s.autoscaling.v2.MetricTargetArgs(
                            type="Utilization", average_utilization=TARGET_CPU_PERCENT
                        ),
                    ),
                )
            ],
            behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                    stabilization_window_seconds=scale_down_stabilization_s,
                    policies=[k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=1, period_seconds=60)],
                ),
            ),
        ),
        opts=opts,
    )
