"""The in-cluster OpenTelemetry collector: OTLP in from the app's pods, AWS X-Ray out.

The upstream `opentelemetry-collector` Helm chart (open-telemetry/opentelemetry-helm-charts, pinned in
infra/workloads/addons.py CHARTS; its default values are kept in policies/charts/ and judged merged with ours) runs
the contrib distribution, pinned by digest, as a Deployment in the add-ons namespace. Pipeline: `otlp` receiver
(gRPC 4317, HTTP 4318) -> `memory_limiter` -> `batch` -> `awsxray` exporter (PutTraceSegments). The configuration is
given whole through the chart's `alternateConfig`: `config` would be deep-merged over the chart's default jaeger,
zipkin and prometheus receivers, debug exporter and logs/metrics pipelines, which we do not run.

Why this and not the ADOT EKS add-on: ADOT's add-on is an operator that needs cert-manager in the cluster (its
admission webhooks' certificates) plus an OpenTelemetryCollector custom resource, i.e. two more controllers with
cluster-wide webhooks to run and upgrade for one stateless Deployment; the chart renders that Deployment directly.

Identity: IRSA (infra/workloads/identity.py), like every add-on that calls AWS; the role may only write segments and
telemetry records. X-Ray's Put* actions have no resource-level permissions, hence `Resource: *`. Sampling is decided
in the apps (parent-based ratio per tier, OTEL_TRACES_SAMPLER_ARG), not by X-Ray sampling rules, so the role has no
GetSampling* permission.

Network: the add-ons namespace is default-deny. `allow-otel-collector` admits only the app namespace's api, worker
and embedder pods on 4317/4318; out, 443 to anywhere but the metadata endpoints (X-Ray and STS through NAT) and
DNS (the namespace's `allow-dns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.addons import _CONTAINER_SECURITY, CHARTS, _resources
from infra.workloads.helm_release import pinned_release
from infra.workloads.identity import Statement, WorkloadIdentity, WorkloadIdentityArgs
from infra.workloads.labels import role_selector
from infra.workloads.network_policies import IMDS

RELEASE = "otel-collector"
SERVICE_ACCOUNT = "otel-collector"
# The chart's Service is named after fullnameOverride: http://otel-collector.<namespace>.svc.cluster.local:4318.
SERVICE = "otel-collector"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
HEALTH_PORT = 13133
# otel/opentelemetry-collector-contrib at the chart's appVersion (0.170.0 ships 0.158.0); the digest is the
# multi-arch index, so amd64 and arm64 nodes pull the same reviewed image.
IMAGE = (
    "otel/opentelemetry-collector-contrib",
    "0.158.0",
    "sha256:c5918f78992ee73b0d6f0e599423ac5ec52dd5d9726733114d6eca53d5a32ed5",
)
# The image's own user (USER 10001 in the distribution's Dockerfile).
RUN_AS = 10001
# The app workloads (infra/workloads/labels.py roles) that send traces.
CLIENT_ROLES = ("api", "worker", "embedder")
# Sampling ratio bounds: stacks/config/observability.py validates `traceSampleRatio` against them.
SAMPLE_RATIO_MIN = 0.0
SAMPLE_RATIO_MAX = 1.0
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
# X-Ray annotations (indexed, filterable). The apps set `deployment.environment` as a *resource* attribute
# (app/core/telemetry.py), and the awsxray exporter matches resource attributes in `indexed_attributes` only under
# their `otel.resource.` name (collector-contrib exporter/awsxrayexporter/internal/translator/segment.go
# makeXRayAttributes); the bare name would index only a span attribute of that name, which no span carries.
INDEXED_RESOURCE_ATTRIBUTES = ("deployment.environment",)


def endpoint(namespace: str) -> str:
    """The OTLP/HTTP endpoint the app pods export to (app/core/telemetry.py appends /v1/traces)."""
    return f"http://{SERVICE}.{namespace}.svc.cluster.local:{OTLP_HTTP_PORT}"


def collector_config(region: str) -> dict[str, Any]:
    """The whole collector configuration (the chart's `alternateConfig`: used as is, never merged)."""
    pod_ip = "${env:MY_POD_IP}"
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"{pod_ip}:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"{pod_ip}:{OTLP_HTTP_PORT}"},
                }
            }
        },
        "processors": {
            # First in the pipeline: refuse data (the SDKs retry) before the pod is OOM-killed. Percentages of
            # the container limit, which the chart also passes as GOMEMLIMIT.
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
            "batch": {"send_batch_size": 50, "timeout": "5s"},
        },
        # PutTraceSegments takes at most 50 segment documents per call, hence the batch size above.
        "exporters": {
            "awsxray": {
                "region": region,
                "indexed_attributes": [f"otel.resource.{a}" for a in INDEXED_RESOURCE_ATTRIBUTES],
            }
        },
        "extensions": {"health_check": {"endpoint": f"{pod_ip}:{HEALTH_PORT}"}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["awsxray"]}
            },
        },
    }


def collector_values(*, region: str, service_account: str, replicas: int) -> dict[str, Any]:
    repository, tag, digest = IMAGE
    return {
        "mode": "deployment",
        "fullnameOverride": SERVICE,
        "image": {"repository": repository, "tag": tag, "digest": digest, "pullPolicy": "IfNotPresent"},
        "replicaCount": replicas,
        "alternateConfig": collector_config(region),
        # The role comes from our IRSA ServiceAccount; the collector never calls the Kubernetes API.
        "serviceAccount": {"create": False, "name": service_account, "automountServiceAccountToken": False},
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": _CONTAINER_SECURITY,
        "resources": _resources("100m", "256Mi", "500m", "512Mi"),
        # Only OTLP: the chart's default jaeger and zipkin ports would be opened on the pod and the Service.
        "ports": {
            "jaeger-compact": {"enabled": False},
            "jaeger-thrift": {"enabled": False},
            "jaeger-grpc": {"enabled": False},
            "zipkin": {"enabled": False},
        },
        "podDisruptionBudget": {"enabled": replicas > 1, "maxUnavailable": 1},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": pod_selector()},
            }
        ],
    }


def pod_selector() -> dict[str, str]:
    """The chart's selector labels (_helpers.tpl `selectorLabels`: chart name and release name)."""
    return {"app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": RELEASE}


def xray_statements() -> list[Statement]:
    # X-Ray's PutTraceSegments/PutTelemetryRecords support no resource-level permissions (Service Authorization
    # Reference, AWS X-Ray): Resource must be "*".
    return [{"Sid": "WriteTraces", "Effect": "Allow", "Action": list(XRAY_ACTIONS), "Resource": ["*"]}]


@dataclass(frozen=True, kw_only=True)
class OtelCollectorArgs:
    provider: k8s.Provider
    namespace: str  # the add-ons namespace
    app_namespace: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    role_name_prefix: str
    replicas: int = 2
    client_roles: Sequence[str] = CLIENT_ROLES
    tags: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()


class OtelCollector(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    identity: WorkloadIdentity
    endpoint: str

    def __init__(self, name: str, args: OtelCollectorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not 1 <= args.replicas <= 10:
            raise ValueError(f"OtelCollectorArgs.replicas: {args.replicas} is outside 1..10")
        unknown = sorted(set(args.client_roles) - set(CLIENT_ROLES))
        if unknown or not args.client_roles:
            raise ValueError(f"OtelCollectorArgs.client_roles: {unknown or 'empty'}; allowed: {CLIENT_ROLES}")
        super().__init__("visionrag:workloads:OtelCollector", name, None, opts)
        self.endpoint = endpoint(args.namespace)
        self.identity = WorkloadIdentity(
            f"{name}-identity",
            WorkloadIdentityArgs(
                provider=args.provider,
                namespace=args.namespace,
                service_account=SERVICE_ACCOUNT,
                role_name=f"{args.role_name_prefix}-{SERVICE_ACCOUNT}"[:64],
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                statements=xray_statements(),
                tags=args.tags,
                depends_on=args.depends_on,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s_child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        self._network_policy(name, args, k8s_child)
        self.release = pinned_release(
            f"{name}-release",
            RELEASE,
            CHARTS[RELEASE],
            namespace=args.namespace,
            values=collector_values(region=args.region, service_account=SERVICE_ACCOUNT, replicas=args.replicas),
            provider=args.provider,
            parent=self,
            depends_on=[*args.depends_on, self.identity],
        )
        self.register_outputs({"endpoint": self.endpoint, "role_arn": self.identity.role_arn})

    @staticmethod
    def _network_policy(name: str, args: OtelCollectorArgs, opts: pulumi.ResourceOptions) -> None:
        net = k8s.networking.v1
        app_pods = [
            net.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": args.app_namespace}
                ),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=role_selector(role)),
            )
            for role in args.client_roles
        ]
        otlp = [net.NetworkPolicyPortArgs(port=p, protocol="TCP") for p in (OTLP_GRPC_PORT, OTLP_HTTP_PORT)]
        net.NetworkPolicy(
            f"{name}-netpol",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-otel-collector", namespace=args.namespace),
            spec=net.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector()),
                policy_types=["Ingress", "Egress"],
                ingress=[net.NetworkPolicyIngressRuleArgs(from_=app_pods, ports=otlp)],
                egress=[
                    net.NetworkPolicyEgressRuleArgs(
                        to=[
                            net.NetworkPolicyPeerArgs(
                                ip_block=net.IPBlockArgs(cidr="0.0.0.0/0", except_=[c for c in IMDS if ":" not in c])
                            )
                        ],
                        ports=[net.NetworkPolicyPortArgs(port=443, protocol="TCP")],
                    )
                ],
            ),
            opts=opts,
        )
