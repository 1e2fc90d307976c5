"""Cluster add-ons as pinned `helm.v3.Release`s with reviewed values, in the add-ons namespace.

- AWS Load Balancer Controller: registers pod IPs in the edge's target groups (TargetGroupBinding only: no
  IngressClass, no Service mutator webhook). IRSA: describe calls and Register/DeregisterTargets on our target
  groups only; no security group writes (the ALB -> node rules are Pulumi's, infra/edge.py).
- External Secrets Operator: syncs Secrets Manager into Kubernetes Secrets, scoped to the app namespace
  (namespaced RBAC). No AWS access itself: the SecretStore's own ServiceAccount carries the role.
- NVIDIA device plugin: advertises `nvidia.com/gpu`; tolerates exactly the GPU node taint and runs only on
  GPU-labelled nodes. No AWS access.
- cluster-autoscaler: scales the managed node groups, the GPU group from zero. IRSA: describe calls, scaling
  only of ASGs tagged as owned by this cluster.
- metrics-server: resource metrics for the HPAs (skipped when the platform installs the EKS add-on).
- DCGM exporter: per-GPU metrics (utilisation, memory, temperature, power) on :9400 for the GPU dashboards and
  the managed scraper (which keeps pods by container port 9400); on GPU nodes only, tolerating exactly the GPU
  taint. No AWS access.

cluster-autoscaler, not Karpenter: the platform runs EKS managed node groups (launch templates, AMI types,
access entries) which cluster-autoscaler scales in place; Karpenter would replace them with its own NodePools,
a second source of truth for instance types and taints, and needs an SQS interruption queue and its own node
IAM role. The config field `cluster.autoscaler` records the choice.

`region` and `vpcId` are set explicitly on the load balancer controller: with the IMDS hop limit at 1 (the
platform's launch templates) pods cannot discover them from instance metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.workloads.helm_release import pinned_release
from infra.workloads.identity import Statement, WorkloadIdentity, WorkloadIdentityArgs

# Chart pins: bump deliberately (read the chart's changelog and re-review the values below).
CHARTS: dict[str, tuple[str, str, str]] = {
    # release: (chart, version, repository)
    "aws-load-balancer-controller": ("aws-load-balancer-controller", "1.17.1", "https://aws.github.io/eks-charts"),
    "external-secrets": ("external-secrets", "0.19.2", "https://charts.external-secrets.io"),
    "nvidia-device-plugin": ("nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin"),
    "cluster-autoscaler": ("cluster-autoscaler", "9.50.1", "https://kubernetes.github.io/autoscaler"),
    "metrics-server": ("metrics-server", "3.12.2", "https://kubernetes-sigs.github.io/metrics-server/"),
    "dcgm-exporter": ("dcgm-exporter", "4.1.3", "https://nvidia.github.io/dcgm-exporter/helm-charts"),
    # Installed by infra/workloads/image_admission.py where signed-image admission is on (staging, prod).
    "policy-controller": ("policy-controller", "0.10.6", "https://sigstore.github.io/helm-charts"),
    # Installed by infra/workloads/otel_collector.py where tracing goes to the in-cluster collector.
    "otel-collector": (
        "opentelemetry-collector",
        "0.170.0",
        "https://open-telemetry.github.io/opentelemetry-helm-charts",
    ),
}
# The image that chart version ships (<DCGM version>-<exporter version>), pinned explicitly so a chart bump is
# the only way it changes.
DCGM_EXPORTER_IMAGE = ("nvcr.io/nvidia/k8s/dcgm-exporter", "4.2.3-4.1.3-ubuntu22.04")
# infra/observability.py's scraper keeps pods by this container port; the dashboards read its default counters.
DCGM_EXPORTER_PORT = 9400
# The chart's pod selector label (`app.kubernetes.io/name: <nameOverride>`), pinned through nameOverride so the
# NetworkPolicy admitting the scraper selects exactly these pods.
DCGM_EXPORTER_NAME = "dcgm-exporter"
# The image tag each pinned chart's appVersion renders, stated in our values so a chart bump is a reviewed diff and
# the third-party scan (python -m stacks images) lists exactly what the cluster pulls.
EXTERNAL_SECRETS_IMAGE_TAG = "v0.19.2"
NVIDIA_DEVICE_PLUGIN_IMAGE_TAG = "v0.17.1"
METRICS_SERVER_IMAGE_TAG = "v0.7.2"
# cluster-autoscaler's minor must match the control plane's.
AUTOSCALER_IMAGE_TAGS = {"1.31": "v1.31.0", "1.32": "v1.32.0", "1.33": "v1.33.0", "1.34": "v1.34.0"}
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}

_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, dict[str, str]]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def gpu_toleration(taint: tuple[str, str, str]) -> dict[str, str]:
    """The toleration matching the node group taint exactly (key, value and effect; operator Equal)."""
    key, value, effect = taint
    if effect not in _EFFECTS:
        raise ValueError(f"gpu_taint: effect {effect!r} is not one of {', '.join(_EFFECTS)}")
    return {"key": key, "operator": "Equal", "value": value, "effect": _EFFECTS[effect]}


@dataclass(frozen=True, kw_only=True)
class AddonsArgs:
    provider: k8s.Provider
    namespace: str
    app_namespace: str
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    region: str
    vpc_id: pulumi.Input[str]
    target_group_arns: Sequence[pulumi.Input[str]]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    gpu_taint: tuple[str, str, str]
    gpu_label: tuple[str, str]
    role_name_prefix: str
    install_metrics_server: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()


class Addons(pulumi.ComponentResource):
    releases: dict[str, k8s.helm.v3.Release]
    identities: dict[str, WorkloadIdentity]

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.kubernetes_version not in AUTOSCALER_IMAGE_TAGS:
            raise ValueError(
                f"AddonsArgs.kubernetes_version: {args.kubernetes_version!r} has no pinned cluster-autoscaler; "
                f"allowed: {', '.join(AUTOSCALER_IMAGE_TAGS)}"
            )
        if not args.target_group_arns:
            raise ValueError("AddonsArgs.target_group_arns: the load balancer controller needs the target groups")
        toleration = gpu_toleration(args.gpu_taint)
        super().__init__("visionrag:workloads:Addons", name, None, opts)
        self._args = args
        self._prefix = name
        self.releases = {}
        self.identities = {}
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        lbc = self._identity(
            f"{name}-lbc",
            "aws-load-balancer-controller",
            [
                {
                    "Sid": "Describe",
                    "Effect": "Allow",
                    "Action": [
                        "elasticloadbalancing:DescribeLoadBalancers",
                        "elasticloadbalancing:DescribeListeners",
                        "elasticloadbalancing:DescribeTargetGroups",
                        "elasticloadbalancing:DescribeTargetGroupAttributes",
                        "elasticloadbalancing:DescribeTargetHealth",
                        "elasticloadbalancing:DescribeTags",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeInstances",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeVpcs",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeAvailabilityZones",
                    ],
                    "Resource": ["*"],  # Describe* has no resource-level permissions
                },
                {
                    "Sid": "RegisterPodTargets",
                    "Effect": "Allow",
                    "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                    "Resource": list(args.target_group_arns),
                },
            ],
        )
        self._release(
            "aws-load-balancer-controller",
            {
                "clusterName": args.cluster_name,
                "region": args.region,
                "vpcId": args.vpc_id,
                "replicaCount": 2,
                "serviceAccount": {"create": False, "name": lbc.name},
                "createIngressClassResource": False,
                "enableServiceMutatorWebhook": False,
                "enableShield": False,
                "enableWaf": False,
                "enableWafv2": False,
                "defaultTargetType": "ip",
                "priorityClassName": "system-cluster-critical",
                "podDisruptionBudget": {"maxUnavailable": 1},
                "resources": _resources("100m", "128Mi", "500m", "512Mi"),
                "podSecurityContext": {**_POD_SECURITY, "fsGroup": 65534},
                "securityContext": _CONTAINER_SECURITY,
            },
            depends_on=[lbc],
        )

        # No IRSA: ESO authenticates per SecretStore (external_secrets.py). Scoped to the app namespace so its
        # RBAC is a namespaced Role instead of cluster-wide read of every Secret.
        self._release(
            "external-secrets",
            {
                "installCRDs": True,
                "image": {"tag": EXTERNAL_SECRETS_IMAGE_TAG},
                "replicaCount": 2,
                "leaderElect": True,
                "scopedNamespace": args.app_namespace,
                "scopedRBAC": True,
                "processClusterStore": False,
                "processClusterExternalSecret": False,
                "processPushSecret": False,
                "priorityClassName": "system-cluster-critical",
                "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
                "resources": _resources("50m", "128Mi", "500m", "512Mi"),
                "podSecurityContext": _POD_SECURITY,
                "securityContext": _CONTAINER_SECURITY,
                "webhook": {
                    "image": {"tag": EXTERNAL_SECRETS_IMAGE_TAG},
                    "replicaCount": 2,
                    "resources": _resources("20m", "64Mi", "200m", "256Mi"),
                    "podSecurityContext": _POD_SECURITY,
                    "securityContext": _CONTAINER_SECURITY,
                },
                "certController": {
                    "image": {"tag": EXTERNAL_SECRETS_IMAGE_TAG},
                    "resources": _resources("20m", "64Mi", "200m", "256Mi"),
                    "podSecurityContext": _POD_SECURITY,
                    "securityContext": _CONTAINER_SECURITY,
                },
            },
        )

        gpu_key, gpu_value = args.gpu_label
        self._release(
            "nvidia-device-plugin",
            {
                "image": {"tag": NVIDIA_DEVICE_PLUGIN_IMAGE_TAG},
                "tolerations": [toleration],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": gpu_key, "operator": "In", "values": [gpu_value]}]}
                            ]
                        }
                    }
                },
                "priorityClassName": "system-node-critical",
                "gfd": {"enabled": False},
                "nfd": {"enabled": False},
                "resources": _resources("50m", "64Mi", "200m", "256Mi"),
                # Stated, not left to the chart's template fallback (which picks privileged or SYS_ADMIN for
                # compatWithCPUManager / MIG strategies): root for the kubelet's socket directory, nothing more.
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"], "add": []},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            },
        )

        ca = self._identity(
            f"{name}-autoscaler",
            "cluster-autoscaler",
            [
                {
                    "Sid": "Describe",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                    ],
                    "Resource": ["*"],  # Describe* has no resource-level permissions
                },
                {
                    "Sid": "DescribeOwnNodegroups",
                    "Effect": "Allow",
                    "Action": ["eks:DescribeNodegroup"],
                    "Resource": [
                        pulumi.Output.concat(
                            "arn:aws:eks:", args.region, ":", account, ":nodegroup/", args.cluster_name, "/*/*"
                        )
                    ],
                },
                {
                    "Sid": "ScaleOwnGroups",
                    "Effect": "Allow",
                    "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                    "Resource": ["*"],
                    # Only the node groups tagged as owned by this cluster (EKS managed node groups carry the tag).
                    "Condition": pulumi.Output.from_input(args.cluster_name).apply(
                        lambda c: {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{c}": "owned"}}
                    ),
                },
            ],
        )
        self._release(
            "cluster-autoscaler",
            {
                "cloudProvider": "aws",
                "awsRegion": args.region,
                "autoDiscovery": {"clusterName": args.cluster_name},
                "image": {"tag": AUTOSCALER_IMAGE_TAGS[args.kubernetes_version]},
                "rbac": {"serviceAccount": {"create": False, "name": ca.name}},
                "replicaCount": 1,  # leader-elected; one active instance is the design
                "priorityClassName": "system-cluster-critical",
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    "expander": "least-waste",
                    # The embedder keeps its weights in an emptyDir: it must still be allowed to scale down.
                    "skip-nodes-with-local-storage": False,
                    "skip-nodes-with-system-pods": False,
                    "scale-down-unneeded-time": "10m",
                    "scale-down-delay-after-add": "10m",
                },
                "resources": _resources("100m", "300Mi", "500m", "600Mi"),
                "securityContext": _POD_SECURITY,
                "containerSecurityContext": _CONTAINER_SECURITY,
            },
            depends_on=[ca],
        )

        # Root is needed to read the kubelet's pod-resources socket (root-only) that maps GPUs to pods; every
        # capability is still dropped: the default counters need no SYS_ADMIN (only DCP profiling fields do).
        repository, tag = DCGM_EXPORTER_IMAGE
        self._release(
            "dcgm-exporter",
            {
                "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
                "nameOverride": DCGM_EXPORTER_NAME,
                "arguments": ["-f", "/etc/dcgm-exporter/default-counters.csv"],
                "tolerations": [toleration],
                "nodeSelector": {gpu_key: gpu_value},
                "priorityClassName": "system-node-critical",
                "service": {
                    "enable": True,
                    "type": "ClusterIP",
                    "port": DCGM_EXPORTER_PORT,
                    "address": f":{DCGM_EXPORTER_PORT}",
                },
                # No Prometheus Operator in the cluster (the AMP scraper discovers pods): no ServiceMonitor CRD.
                "serviceMonitor": {"enabled": False},
                "kubernetes": {"enablePodLabels": False},
                "resources": _resources("100m", "256Mi", "500m", "1Gi"),
                "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "securityContext": {
                    "runAsNonRoot": False,
                    "runAsUser": 0,
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    # Helm merges maps but replaces lists: without `add: []` the chart's default
                    # `add: [SYS_ADMIN]` survives next to our `drop` (policies/rules/helm_releases.py judges this).
                    "capabilities": {"drop": ["ALL"], "add": []},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            },
        )

        if args.install_metrics_server:
            self._release(
                "metrics-server",
                {
                    "image": {"tag": METRICS_SERVER_IMAGE_TAG},
                    "replicas": 2,
                    "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
                    "priorityClassName": "system-cluster-critical",
                    "resources": _resources("100m", "200Mi", "500m", "500Mi"),
                    "securityContext": _CONTAINER_SECURITY,
                },
            )
        self.register_outputs({"releases": sorted(self.releases)})

    def _identity(self, resource_name: str, sa: str, statements: list[Statement]) -> WorkloadIdentity:
        a = self._args
        ident = WorkloadIdentity(
            resource_name,
            WorkloadIdentityArgs(
                provider=a.provider,
                namespace=a.namespace,
                service_account=sa,
                role_name=f"{a.role_name_prefix}-{sa}"[:64],
                oidc_provider_arn=a.oidc_provider_arn,
                oidc_issuer=a.oidc_issuer,
                statements=statements,
                tags=a.tags,
                kubernetes_api_access=True,  # controllers watch the Kubernetes API
                depends_on=a.depends_on,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.identities[sa] = ident
        return ident

    def _release(self, release: str, values: dict[str, Any], depends_on: Sequence[pulumi.Resource] = ()) -> None:
        self.releases[release] = pinned_release(
            f"{self._prefix}-{release}",
            release,
            CHARTS[release],
            namespace=self._args.namespace,
            values=values,
            provider=self._args.provider,
            parent=self,
            depends_on=[*self._args.depends_on, *depends_on],
        )
