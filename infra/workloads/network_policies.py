"""Explicit allows on top of each namespace's default-deny.

Where traffic enters from outside the pod network the source is an ipBlock, and never one that covers a pod:
with the VPC CNI every pod takes an address from the private subnets, so an ipBlock over them (or over the VPC)
would admit every pod of the cluster, and `NetworkPoliciesArgs` refuses one that overlaps `pod_cidrs`.
- ALB -> api/frontend: the ALB uses IP targets (the pods' VPC IPs), so packets arrive from the ALB's ENIs in
  the public subnets (`alb_cidrs`). The security groups (ALB SG -> node SG, infra/edge.py) are the layer in front.
- metrics scrapes: the managed Prometheus scraper's ENIs in its own `control` subnets (`scraper_cidrs`).
- control plane -> add-on webhooks and the metrics APIService: the EKS control plane's cross-account ENIs in the
  cluster subnets, the `control` tier (`control_plane_cidrs`).
Kubelet probes need no rule: the VPC CNI's policy agent always admits the pod's own node IP
(aws/aws-network-policy-agent#65).
AWS APIs (S3 gateway endpoint, STS, Secrets Manager, the LLM endpoint, the OIDC issuer), Sentry and a managed OTLP
collector are 443 to any address except the instance metadata service: pods must get credentials from IRSA, never
from the node role. An in-cluster OTLP collector gets its own egress rule (its namespace, its port).
Enforcement needs the VPC CNI network-policy agent (`enableNetworkPolicy` on the vpc-cni add-on, platform).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.addons import DCGM_EXPORTER_NAME, DCGM_EXPORTER_PORT
from infra.workloads.labels import role_selector

# Node-local credential endpoints: the instance metadata service and the EKS Pod Identity agent (a hostNetwork
# DaemonSet answering on 169.254.170.23 / [fd00:ec2::23]:80, docs.aws.amazon.com/eks/latest/userguide/
# pod-id-agent-setup.html). Pods authenticate through IRSA only; neither may hand them the node's or another
# pod's credentials. (169.254.170.2 is the ECS task metadata endpoint: nothing answers there on EKS.)
IMDS = ["169.254.169.254/32", "169.254.170.23/32", "fd00:ec2::254/128", "fd00:ec2::23/128"]
PORTS = {
    "api": 8000,
    "api-metrics": 9090,
    "worker-metrics": 9091,
    "embedder": 7000,
    "qdrant-http": 6333,
    "qdrant-grpc": 6334,
    "qdrant-p2p": 6335,
    "frontend": 3000,
    "redis": 6379,
    "clamd": 3310,
}


def _ports(*ports: int, protocol: str = "TCP") -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(port=p, protocol=protocol) for p in ports]


def _pods(*roles: str) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=role_selector(r))
        )
        for r in roles
    ]


def _cidrs(cidrs: Sequence[str], exclude: Sequence[str] = ()) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            ip_block=k8s.networking.v1.IPBlockArgs(cidr=c, except_=[e for e in exclude if ":" not in e] or None)
        )
        for c in cidrs
    ]


_ANYWHERE_BUT_IMDS = _cidrs(["0.0.0.0/0"], IMDS)


def _collector(namespace: str, port: int) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to any pod of the collector's namespace on its OTLP port (its pod labels are not ours to know)."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": namespace}
                )
            )
        ],
        ports=_ports(port),
    )


@dataclass(frozen=True, kw_only=True)
class NetworkPoliciesArgs:
    provider: k8s.Provider
    app_namespace: pulumi.Input[str]
    system_namespace: pulumi.Input[str]
    # Sources of ALB, scraper and control-plane traffic (see module docstring); none may overlap pod_cidrs.
    alb_cidrs: Sequence[str]
    control_plane_cidrs: Sequence[str]
    scraper_cidrs: Sequence[str]
    # Where pods (and the nodes: metrics-server reads every kubelet on 10250) take their addresses.
    pod_cidrs: Sequence[str]
    # Where the cache lives (its subnets or the VPC CIDR): the endpoint IP is not known before apply.
    cache_cidrs: Sequence[str]
    frontend: bool = False
    # (namespace, port) of the in-cluster OTLP collector the api, worker and embedder export traces to; a managed
    # one is 443 (allowed).
    otlp_collector: tuple[str, int] | None = None
    # The malware scanner (infra/workloads/clamav.py): only the api reaches clamd; clamd reaches only the mirror.
    clamav: bool = False
    # The restore drill CronJob (infra/workloads/restore_drill.py): it reaches Qdrant's HTTP API like the snapshot job.
    restore_drill: bool = False


def peer_cidrs(subnet_cidrs: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The NetworkPolicy peers by role, from the network's subnet CIDRs per tier (infra.network.subnet_layout).

    Placement this mapping relies on (stacks/program.py wires it, tests/infra/workloads/test_network_peers.py
    checks it on the real program): the ALB in `public` (infra/edge.py), the EKS cluster subnets and the managed
    scraper in `control`, the nodes (hence pods) and the cache in `private`."""
    missing = [t for t in ("public", "private", "control") if not subnet_cidrs.get(t)]
    if missing:
        raise ValueError(f"subnet_cidrs: tiers {missing} missing (got {sorted(subnet_cidrs)})")
    return {
        "alb_cidrs": list(subnet_cidrs["public"]),
        "control_plane_cidrs": list(subnet_cidrs["control"]),
        "scraper_cidrs": list(subnet_cidrs["control"]),
        "pod_cidrs": list(subnet_cidrs["private"]),
        "cache_cidrs": list(subnet_cidrs["private"]),
    }


def _validate(args: NetworkPoliciesArgs) -> None:
    fields = ("alb_cidrs", "control_plane_cidrs", "scraper_cidrs", "pod_cidrs", "cache_cidrs")
    nets: dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
    for f in fields:
        values = list(getattr(args, f))
        try:
            nets[f] = [ipaddress.ip_network(c, strict=True) for c in values]
        except ValueError as err:
            raise ValueError(f"NetworkPoliciesArgs.{f}: {values!r} holds a non-network CIDR ({err})") from None
        if not values or any(n.prefixlen == 0 for n in nets[f]):
            raise ValueError(f"NetworkPoliciesArgs.{f}: list specific CIDRs, never empty or /0 (got {values!r})")
    for f in ("alb_cidrs", "control_plane_cidrs", "scraper_cidrs"):
        clash = [str(n) for n in nets[f] if any(n.overlaps(p) for p in nets["pod_cidrs"])]
        if clash:
            raise ValueError(
                f"NetworkPoliciesArgs.{f}: {clash} overlap the pod subnets {list(args.pod_cidrs)}: an ipBlock there "
                "admits every pod of the cluster"
            )


@dataclass(frozen=True)
class _Rule:
    ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]
    egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]


class NetworkPolicies(pulumi.ComponentResource):
    policies: dict[str, k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:workloads:NetworkPolicies", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.policies = {}
        ns = args.app_namespace
        alb, scraper, control_plane = list(args.alb_cidrs), list(args.scraper_cidrs), list(args.control_plane_cidrs)
        ing = k8s.networking.v1.NetworkPolicyIngressRuleArgs
        eg = k8s.networking.v1.NetworkPolicyEgressRuleArgs
        qdrant_client = eg(to=_pods("qdrant"), ports=_ports(PORTS["qdrant-http"], PORTS["qdrant-grpc"]))
        https_out = eg(to=_ANYWHERE_BUT_IMDS, ports=_ports(443))
        cache = eg(to=_cidrs(args.cache_cidrs), ports=_ports(PORTS["redis"]))

        self._allow(f"{name}-dns", ns, "allow-dns", {}, _Rule([], [self._dns()]))
        # The api, the worker and the embedder send traces (app/core/telemetry.py).
        collector = [_collector(*args.otlp_collector)] if args.otlp_collector else []
        rules: dict[str, _Rule] = {
            "api": _Rule(
                [
                    ing(from_=_cidrs(alb), ports=_ports(PORTS["api"])),
                    ing(from_=_cidrs(scraper), ports=_ports(PORTS["api-metrics"])),
                ],
                [
                    qdrant_client,
                    eg(to=_pods("embedder"), ports=_ports(PORTS["embedder"])),
                    cache,
                    https_out,
                    *collector,
                    *([eg(to=_pods("clamav"), ports=_ports(PORTS["clamd"]))] if args.clamav else []),
                ],
            ),
            "worker": _Rule(
                [ing(from_=_cidrs(scraper), ports=_ports(PORTS["worker-metrics"]))],
                [
                    qdrant_client,
                    eg(to=_pods("embedder"), ports=_ports(PORTS["embedder"])),
                    cache,
                    https_out,
                    *collector,
                ],
            ),
            "embedder": _Rule(
                [ing(from_=_pods("api", "worker"), ports=_ports(PORTS["embedder"]))],
                # Only the weights download (S3), STS for IRSA, Sentry, and its traces to the collector.
                [https_out, *collector],
            ),
            "qdrant": _Rule(
                [
                    ing(
                        from_=_pods("api", "worker", "snapshots", *(["restore-drill"] if args.restore_drill else [])),
                        ports=_ports(PORTS["qdrant-http"], PORTS["qdrant-grpc"]),
                    ),
                    ing(from_=_pods("qdrant"), ports=_ports(PORTS["qdrant-http"], PORTS["qdrant-p2p"])),
                    # The managed scraper reads /metrics on the HTTP port; every other route still needs the key.
                    ing(from_=_cidrs(scraper), ports=_ports(PORTS["qdrant-http"])),
                ],
                [
                    eg(to=_pods("qdrant"), ports=_ports(PORTS["qdrant-http"], PORTS["qdrant-p2p"])),
                    # A restore (app/ops/snapshots.py, the drill) has each node download its snapshot from a
                    # presigned S3 URL itself (`recover_snapshot(location=...)`): 443 out, never the IMDS.
                    https_out,
                ],
            ),
            "snapshots": _Rule([], [eg(to=_pods("qdrant"), ports=_ports(PORTS["qdrant-http"])), https_out]),
        }
        if args.restore_drill:
            rules["restore-drill"] = _Rule([], [eg(to=_pods("qdrant"), ports=_ports(PORTS["qdrant-http"])), https_out])
        if args.clamav:
            # freshclam downloads signatures from database.clamav.net (a CDN) over HTTPS, through the NAT gateway.
            rules["clamav"] = _Rule([ing(from_=_pods("api"), ports=_ports(PORTS["clamd"]))], [https_out])
        if args.frontend:
            rules["frontend"] = _Rule([ing(from_=_cidrs(alb), ports=_ports(PORTS["frontend"]))], [https_out])
        for role, rule in rules.items():
            self._allow(f"{name}-{role}", ns, f"allow-{role}", role_selector(role), rule)

        # Add-ons: webhooks and metrics called by the control plane, controllers calling the API server and AWS.
        self._allow(f"{name}-system-dns", args.system_namespace, "allow-dns", {}, _Rule([], [self._dns()]))
        self._allow(
            f"{name}-system-controllers",
            args.system_namespace,
            "allow-controllers",
            {},
            _Rule(
                [ing(from_=_cidrs(control_plane), ports=_ports(443, 8443, 9443, 10250))],
                # metrics-server scrapes every kubelet (node IPs, 10250).
                [https_out, eg(to=_cidrs(args.pod_cidrs), ports=_ports(10250))],
            ),
        )
        # The managed scraper (ENIs in the VPC) reads GPU metrics from the DCGM exporter on the GPU nodes.
        self._allow(
            f"{name}-system-dcgm-exporter",
            args.system_namespace,
            "allow-dcgm-exporter-scrape",
            {"app.kubernetes.io/name": DCGM_EXPORTER_NAME},
            _Rule([ing(from_=_cidrs(scraper), ports=_ports(DCGM_EXPORTER_PORT))], []),
        )
        self.register_outputs({"policies": sorted(self.policies)})

    @staticmethod
    def _dns() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
        return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": "kube-system"}
                    ),
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
                )
            ],
            ports=[*_ports(53, protocol="UDP"), *_ports(53)],
        )

    def _allow(
        self, resource_name: str, namespace: pulumi.Input[str], policy: str, pods: Mapping[str, str], rule: _Rule
    ) -> None:
        types = (["Ingress"] if rule.ingress else []) + (["Egress"] if rule.egress else [])
        self.policies[resource_name] = k8s.networking.v1.NetworkPolicy(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy, namespace=namespace),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(pods) or None),
                policy_types=types,
                ingress=rule.ingress or None,
                egress=rule.egress or None,
            ),
            opts=self._child,
        )
