"""AppDeployment: one stateless workload — Deployment, ClusterIP Service, PDB and HPA where they apply."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.autoscaling import cpu_autoscaler
from infra.workloads.availability import disruption_budget, needs_pdb
from infra.workloads.await_policy import APP, AwaitPolicy
from infra.workloads.labels import labels, selector

_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class AppDeploymentArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    workload: str
    role: str
    pod: k8s.core.v1.PodSpecArgs
    replicas: int
    max_replicas: int | None = None
    # Service port name -> container port; empty means no Service (nothing connects to it).
    service_ports: Mapping[str, int] = field(default_factory=dict)
    scale_down_stabilization_s: int = 300
    # Roll out by surging one extra pod first (no capacity lost). False: replace in place, for pods whose nodes
    # cannot grow (a GPU node group already at its maximum would leave the surge pod pending forever).
    surge: bool = True
    # How long `pulumi up` waits for the rollout (infra/workloads/await_policy.py).
    await_policy: AwaitPolicy = APP
    depends_on: tuple[pulumi.Resource, ...] = ()


class AppDeployment(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service | None
    pdb: k8s.policy.v1.PodDisruptionBudget | None
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None

    def __init__(self, name: str, args: AppDeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not _DNS_LABEL.match(args.workload):
            raise ValueError(f"AppDeploymentArgs.workload: {args.workload!r} is not a DNS label")
        if args.replicas < 0:
            raise ValueError(f"AppDeploymentArgs.replicas: must be >= 0 (got {args.replicas})")
        if args.max_replicas is not None and args.max_replicas < args.replicas:
            raise ValueError(f"AppDeploymentArgs.max_replicas: {args.max_replicas} is below replicas {args.replicas}")
        super().__init__("visionrag:workloads:AppDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        autoscaled = args.max_replicas is not None and args.max_replicas > max(args.replicas, 1)
        meta = k8s.meta.v1.ObjectMetaArgs(
            name=args.workload,
            namespace=args.namespace,
            labels=labels(args.workload, args.role),
            annotations=args.await_policy.annotations(),
        )

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.replicas,
                revision_history_limit=5,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(args.workload)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_surge="25%" if args.surge else 0, max_unavailable=0 if args.surge else 1
                    ),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(args.workload, args.role)),
                    spec=args.pod,
                ),
            ),
            # The HPA owns the live replica count once it exists; re-applying the config value would fight it.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["spec.replicas"] if autoscaled else None)
            ),
        )
        self.service = None
        if args.service_ports:
            self.service = k8s.core.v1.Service(
                f"{name}-service",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.workload, namespace=args.namespace, labels=labels(args.workload, args.role)
                ),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    selector=selector(args.workload),
                    ports=[
                        k8s.core.v1.ServicePortArgs(name=n, port=p, target_port=p, protocol="TCP")
                        for n, p in args.service_ports.items()
                    ],
                ),
                opts=child,
            )
        self.pdb = (
            disruption_budget(f"{name}-pdb", workload=args.workload, namespace=args.namespace, opts=child)
            if needs_pdb(args.replicas, args.max_replicas)
            else None
        )
        self.hpa = None
        if autoscaled:
            assert args.max_replicas is not None
            self.hpa = cpu_autoscaler(
                f"{name}-hpa",
                workload=args.workload,
                namespace=args.namespace,
                min_replicas=max(args.replicas, 1),
                max_replicas=args.max_replicas,
                scale_down_stabilization_s=args.scale_down_stabilization_s,
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.deployment])),
            )
        self.register_outputs({"deployment": self.deployment.metadata.name})
