"""Namespaces: `visionrag` for the application (Pod Security Standard `restricted`, enforced) and a separate one
for cluster add-ons, some of which need host access (the NVIDIA device plugin mounts the kubelet's device-plugin
socket directory). Every namespace starts with a default-deny NetworkPolicy; allows are added explicitly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

PSS_VERSION = "latest"


def pss_labels(enforce: str) -> dict[str, str]:
    # audit and warn stay at `restricted` even where enforcement is relaxed, so every privileged add-on pod is
    # visible in the audit log and in `kubectl` warnings.
    return {
        "pod-security.kubernetes.io/enforce": enforce,
        "pod-security.kubernetes.io/enforce-version": PSS_VERSION,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": PSS_VERSION,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": PSS_VERSION,
    }


@dataclass(frozen=True, kw_only=True)
class NamespacesArgs:
    provider: k8s.Provider
    app: str = "visionrag"
    system: str = "visionrag-system"
    # Extra labels on the app namespace only (the signed-image admission opt-in, infra/workloads/image_admission.py).
    app_labels: Mapping[str, str] = field(default_factory=dict)


def default_deny(
    resource_name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=namespace),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
        ),
        opts=opts,
    )


class Namespaces(pulumi.ComponentResource):
    app: k8s.core.v1.Namespace
    system: k8s.core.v1.Namespace
    app_name: pulumi.Output[str]
    system_name: pulumi.Output[str]

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.app == args.system:
            raise ValueError(f"NamespacesArgs.system: must differ from the app namespace (got {args.system!r})")
        super().__init__("visionrag:workloads:Namespaces", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.app = k8s.core.v1.Namespace(
            f"{name}-app",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.app, labels={**pss_labels("restricted"), **args.app_labels}),
            opts=child,
        )
        self.system = k8s.core.v1.Namespace(
            f"{name}-system",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.system, labels=pss_labels("privileged")),
            opts=child,
        )
        self.app_name = self.app.metadata.name
        self.system_name = self.system.metadata.name
        default_deny(f"{name}-app-default-deny", self.app_name, child)
        default_deny(f"{name}-system-default-deny", self.system_name, child)
        self.register_outputs({"app": self.app_name, "system": self.system_name})
