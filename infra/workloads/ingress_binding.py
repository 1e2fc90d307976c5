"""TargetGroupBinding: attaches a Service's pods (IP targets) to a target group the edge component owns.

The ALB, listeners and target groups are plain AWS resources (infra/edge.py); the AWS Load Balancer Controller
only registers pod IPs. There is deliberately no `spec.networking`: the ALB -> node security group rules on the
target ports are plain Pulumi resources in infra/edge.py, and `networking` would make the controller edit "the"
security group of each pod ENI, which it finds by the `kubernetes.io/cluster/<name>` tag and refuses to do when
it finds none or several ("expect exactly one securityGroup tagged with kubernetes.io/cluster/<name> for eni";
kubernetes-sigs/aws-load-balancer-controller#1897, #3731). Without it the controller needs no EC2 write
permission at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.labels import labels


@dataclass(frozen=True, kw_only=True)
class TargetGroupBindingArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    service: str
    port: int
    target_group_arn: pulumi.Input[str]
    depends_on: tuple[pulumi.Resource, ...] = ()


class TargetGroupBinding(pulumi.ComponentResource):
    binding: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: TargetGroupBindingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not 1 <= args.port <= 65535:
            raise ValueError(f"TargetGroupBindingArgs.port: {args.port} is not a TCP port")
        super().__init__("visionrag:workloads:TargetGroupBinding", name, None, opts)
        self.binding = k8s.apiextensions.CustomResource(
            f"{name}-tgb",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="TargetGroupBinding",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.service, namespace=args.namespace, labels=labels(args.service)
            ),
            spec={
                "serviceRef": {"name": args.service, "port": args.port},
                "targetGroupARN": args.target_group_arn,
                "targetType": "ip",
            },
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"service": args.service})
