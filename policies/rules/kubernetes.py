"""Kubernetes objects the program creates with pulumi_kubernetes: container hardening, resources, images,
GPU scheduling, namespaces, network isolation, disruption budgets, Service exposure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from pulumi_policy import Policy, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules._base import (
    Report,
    as_list,
    config_schema,
    get,
    is_set,
    knob,
    number,
    of_type,
    peek,
    resource_policy,
    stack_policy,
    truthy,
)

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SERVICE = "kubernetes:core/v1:Service"
REPLICATED = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
# The api's list of peers whose X-Forwarded-For it believes (app/api/settings.py trusted_proxies).
TRUSTED_PROXIES = "TRUSTED_PROXIES"
GPU = "nvidia.com/gpu"
PSS_ENFORCE = "pod-security.kubernetes.io/enforce"
SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", "default"]


def pod_spec(resource_type: str, props: Any) -> Any:
    path = POD_SPEC_PATHS.get(resource_type)
    return None if path is None else get(props, *path)


def containers(spec: Any) -> Iterator[tuple[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in as_list(get(spec, field)):
            yield f"{field[:-1] if field.endswith('s') else field} {get(c, 'name')}", c


def _workload(check):
    """Resource validation over every workload's pod spec (report messages name the container)."""

    def validate(args: ResourceValidationArgs, report: Report) -> None:
        spec = pod_spec(args.resource_type, args.props)
        if spec is None:
            return
        for message in check(spec, args):
            report(message)

    return validate


def _resources(spec: Any, args: ResourceValidationArgs) -> Iterator[str]:
    for label, c in containers(spec):
        if label.startswith("ephemeralContainer"):
            continue
        res = get(c, "resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not is_set(get(res, kind, resource)):
                    yield f"{label}: resources.{kind}.{resource} is not set"


def _tolerates_gpu(spec: Any) -> bool:
    for t in as_list(get(spec, "tolerations")):
        key, op, effect = get(t, "key"), get(t, "operator"), get(t, "effect")
        if effect not in (None, "", "NoSchedule"):
            continue
        if key == GPU or (key in (None, "") and op == "Exists"):
            return True
    return False


def _gpu(spec: Any, args: ResourceValidationArgs) -> Iterator[str]:
    wants_gpu = False
    for label, c in containers(spec):
        limit = get(c, "resources", "limits", GPU)
        request = get(c, "resources", "requests", GPU)
        if limit is None and request is None:
            continue
        wants_gpu = True
        if limit is None:
            yield f"{label}: requests {GPU} without a limit (extended resources need limit = request)"
        elif request is not None and str(request) != str(limit):
            yield f"{label}: {GPU} request {request} differs from limit {limit}"
    if wants_gpu and not _tolerates_gpu(spec):
        yield f"requests {GPU} but does not tolerate the {GPU}:NoSchedule taint; it can never be scheduled"
    if (
        not wants_gpu
        and _tolerates_gpu(spec)
        and args.resource_type != "kubernetes:apps/v1:DaemonSet"  # node agents (device plugin, DCGM) may
    ):
        yield f"tolerates the {GPU} taint without requesting {GPU}: it would occupy (and keep alive) a GPU node"


def _image(spec: Any, args: ResourceValidationArgs) -> Iterator[str]:
    require_digest = knob(args, "requireDigest", False)
    for label, c in containers(spec):
        image = get(c, "image")
        if not isinstance(image, str) or not image:
            yield f"{label}: no image"
            continue
        name, _, digest = image.partition("@")
        last = name.rsplit("/", 1)[-1]
        tag = last.partition(":")[2]
        if tag == "latest":
            yield f"{label}: image {image} uses the mutable tag 'latest'"
        elif not tag and not digest:
            yield f"{label}: image {image} has neither tag nor digest (means 'latest')"
        if require_digest and not digest.startswith("sha256:"):
            yield f"{label}: image {image} is not pinned by @sha256 digest (this stack deploys digests only)"


def _security_context(spec: Any, args: ResourceValidationArgs) -> Iterator[str]:
    pod_sc = get(spec, "securityContext") or {}
    for label, c in containers(spec):
        sc = get(c, "securityContext") or {}
        if not (
            truthy(get(sc, "runAsNonRoot")) or (get(sc, "runAsNonRoot") is None and truthy(get(pod_sc, "runAsNonRoot")))
        ):
            yield f"{label}: runAsNonRoot is not true"
        uid = number(get(sc, "runAsUser")) if get(sc, "runAsUser") is not None else number(get(pod_sc, "runAsUser"))
        if uid == 0:
            yield f"{label}: runAsUser is 0 (root)"
        if get(sc, "allowPrivilegeEscalation") is not False:
            yield f"{label}: allowPrivilegeEscalation is not false"
        if not truthy(get(sc, "readOnlyRootFilesystem")):
            yield f"{label}: readOnlyRootFilesystem is not true"
        if "ALL" not in [str(x) for x in as_list(get(sc, "capabilities", "drop"))]:
            yield f"{label}: capabilities.drop does not include ALL"
        added = [str(x) for x in as_list(get(sc, "capabilities", "add")) if str(x) != "NET_BIND_SERVICE"]
        if added:
            yield f"{label}: adds capabilities {added}"
        if truthy(get(sc, "privileged")):
            yield f"{label}: privileged is true"
        seccomp = get(sc, "seccompProfile", "type") or get(pod_sc, "seccompProfile", "type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            yield f"{label}: seccompProfile.type is {seccomp!r}; use RuntimeDefault"


LONG_RUNNING = {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"}


def _probes(spec: Any, args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type not in LONG_RUNNING:
        return  # a Job's pod is done when its process exits
    for c in as_list(get(spec, "containers")):
        missing = [p for p in ("readinessProbe", "livenessProbe") if not is_set(get(c, p))]
        if missing:
            yield f"container {get(c, 'name')}: no {' or '.join(missing)}"


def _host_access(spec: Any, args: ResourceValidationArgs) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if truthy(get(spec, field)):
            yield f"{field} is true"
    for v in as_list(get(spec, "volumes")):
        if is_set(get(v, "hostPath")):
            yield f"volume {get(v, 'name')} mounts hostPath {get(v, 'hostPath', 'path')}"
    for label, c in containers(spec):
        for p in as_list(get(c, "ports")):
            if is_set(get(p, "hostPort")):
                yield f"{label}: binds hostPort {get(p, 'hostPort')}"


# ---- stack-level ------------------------------------------------------------------------------------------
def _name(r: PolicyResource) -> str:
    return str(peek(r.props, "metadata", "name") or r.name)


def _namespace_of(r: PolicyResource) -> str:
    return str(peek(r.props, "metadata", "namespace") or "default")


def _exempt(args: StackValidationArgs) -> set[str]:
    return set(knob(args, "exemptNamespaces", [])) | set(SYSTEM_NAMESPACES)


def _pss(args: StackValidationArgs, report: Report) -> None:
    exempt = _exempt(args)
    for ns in of_type(args.resources, NAMESPACE):
        name = _name(ns)
        if name in exempt:
            continue
        level = get(ns.props, "metadata", "labels", PSS_ENFORCE)
        if level != "restricted":
            report(f"namespace {name}: label {PSS_ENFORCE} is {level!r}, not 'restricted'", ns.urn)


def _is_default_deny(np: PolicyResource) -> bool:
    spec = get(np.props, "spec") or {}
    selector = get(spec, "podSelector") or {}
    if get(selector, "matchLabels") or get(selector, "matchExpressions"):
        return False
    types = set(as_list(get(spec, "policyTypes")))
    return {"Ingress", "Egress"} <= types and not as_list(get(spec, "ingress")) and not as_list(get(spec, "egress"))


def _default_deny(args: StackValidationArgs, report: Report) -> None:
    exempt = _exempt(args)
    policies = of_type(args.resources, NETWORK_POLICY)
    for ns in of_type(args.resources, NAMESPACE):
        name = _name(ns)
        if name in exempt:
            continue
        if not any(_namespace_of(p) == name and _is_default_deny(p) for p in policies):
            report(
                f"namespace {name} has no default-deny NetworkPolicy (empty podSelector, policyTypes Ingress and "
                "Egress, no rules)",
                ns.urn,
            )


def _labels_selected(selector: Any, labels: dict[str, Any]) -> bool:
    match = get(selector, "matchLabels") or {}
    if not match and not get(selector, "matchExpressions"):
        return True
    return all(labels.get(k) == v for k, v in match.items())


def _pdb(args: StackValidationArgs, report: Report) -> None:
    pdbs = of_type(args.resources, PDB)
    hpas = of_type(args.resources, HPA)
    for w in of_type(args.resources, *REPLICATED):
        replicas = number(get(w.props, "spec", "replicas"))
        replicas = 1.0 if replicas is None else replicas
        kind = w.resource_type.rsplit(":", 1)[-1]
        for h in hpas:
            target = get(h.props, "spec", "scaleTargetRef") or {}
            if get(target, "kind") == kind and get(target, "name") == _name(w) and _namespace_of(h) == _namespace_of(w):
                replicas = max(replicas, number(get(h.props, "spec", "minReplicas")) or 1.0)
        if replicas <= 1:
            continue
        labels = dict(get(w.props, "spec", "template", "metadata", "labels") or {})
        covering = [
            p
            for p in pdbs
            if _namespace_of(p) == _namespace_of(w) and _labels_selected(get(p.props, "spec", "selector"), labels)
        ]
        if not covering:
            report(
                f"{kind} {_name(w)} runs {replicas:g} replicas without a PodDisruptionBudget selecting its pods", w.urn
            )
            continue
        for p in covering:
            spec = get(p.props, "spec") or {}
            if number(get(spec, "maxUnavailable")) == 0 or str(get(spec, "minAvailable")) in (
                str(int(replicas)),
                "100%",
            ):
                report(f"PodDisruptionBudget {_name(p)} allows no disruption: node drains would block", p.urn)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(value: Any) -> Network | None:
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return None


def _pod_subnets(resources: list[PolicyResource]) -> list[Network]:
    """The CIDRs of the node groups' subnets: with the VPC CNI every pod takes its address from them."""
    subnets = of_type(resources, SUBNET)
    found: list[Network] = []
    for ng in of_type(resources, NODE_GROUP):
        ids = {str(s) for s in as_list(peek(ng.props, "subnetIds"))}
        deps = {d.urn for d in ng.dependencies}
        for s in subnets:
            if s.urn in deps or ids & {s.name, str(peek(s.props, "id"))}:
                net = _network(peek(s.props, "cidrBlock"))
                if net is not None and net not in found:
                    found.append(net)
    return found


def _holds_pods(net: Network, excepts: list[Network], pods: list[Network]) -> list[str]:
    """The pod subnets that `net` (minus `excepts`) reaches into."""
    hit = []
    for p in pods:
        if net.version != p.version or not net.overlaps(p):
            continue
        if any(e.version == p.version and p.subnet_of(e) for e in excepts):  # type: ignore[arg-type]
            continue
        hit.append(str(p))
    return hit


def _no_pod_sources(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    pods = _pod_subnets(resources)
    if not pods:
        return
    for np in of_type(resources, NETWORK_POLICY):
        for rule in as_list(peek(np.props, "spec", "ingress")):
            for peer in as_list(peek(rule, "from")):
                block = peek(peer, "ipBlock")
                net = _network(peek(block, "cidr")) if block else None
                if net is None:
                    continue
                excepts = [e for e in (_network(x) for x in as_list(peek(block, "except"))) if e is not None]
                hit = _holds_pods(net, excepts, pods)
                if hit:
                    report(
                        f"NetworkPolicy {_namespace_of(np)}/{_name(np)} admits ipBlock {net} which holds the pod "
                        f"subnets {hit}: every pod of the cluster passes; name the real source's subnets",
                        np.urn,
                    )
    for w in of_type(resources, *POD_SPEC_PATHS):
        spec = peek(w.props, *POD_SPEC_PATHS[w.resource_type])
        for _, c in containers(spec):
            for e in as_list(peek(c, "env")):
                if peek(e, "name") != TRUSTED_PROXIES or not isinstance(peek(e, "value"), str):
                    continue
                for item in str(peek(e, "value")).split(","):
                    net = _network(item) if item.strip() else None
                    hit = _holds_pods(net, [], pods) if net is not None else []
                    if hit:
                        report(
                            f"{w.resource_type.rsplit(':', 1)[-1]} {_name(w)}: {TRUSTED_PROXIES} trusts {net}, which "
                            f"holds the pod subnets {hit}: any pod could forge X-Forwarded-For",
                            w.urn,
                        )


def _service_type(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SERVICE:
        return
    kind = get(args.props, "spec", "type")
    if kind in ("LoadBalancer", "NodePort"):
        report(f"Service type {kind}: traffic enters only through our ALB (TargetGroupBinding to a ClusterIP)")


POLICIES: list[Policy] = [
    resource_policy(
        name="k8s-container-resources",
        description="Every container sets cpu and memory requests and limits.",
        severity=Severity.MEDIUM,
        remediation="Set resources.requests and resources.limits (cpu, memory) on every container and init "
        "container; the stack config holds the values per workload.",
        validate=_workload(_resources),
        tags=["kubernetes", "reliability", "cost"],
    ),
    resource_policy(
        name="k8s-gpu-scheduling",
        description="Pods that request nvidia.com/gpu set limit = request and tolerate the GPU taint; pods that "
        "tolerate the GPU taint request a GPU (DaemonSets excepted).",
        severity=Severity.HIGH,
        remediation="Set resources.limits['nvidia.com/gpu'] (= requests) and tolerations=[{key: nvidia.com/gpu, "
        "operator: Exists, effect: NoSchedule}] on GPU workloads only.",
        validate=_workload(_gpu),
        tags=["kubernetes", "gpu", "cost"],
    ),
    resource_policy(
        name="k8s-image-pinning",
        description="No container image uses ':latest' or no tag; where the stack requires it, images are "
        "pinned by @sha256 digest.",
        severity=Severity.HIGH,
        remediation="Reference images as registry/repo@sha256:<digest> (promoted from staging); never ':latest'.",
        validate=_workload(_image),
        schema=config_schema({"requireDigest": {"type": "boolean", "default": False}}),
        tags=["kubernetes", "supply-chain"],
    ),
    resource_policy(
        name="k8s-container-security-context",
        description="Containers run as non-root with no privilege escalation, a read-only root filesystem, "
        "ALL capabilities dropped, not privileged and seccomp RuntimeDefault (PSS restricted).",
        severity=Severity.HIGH,
        remediation="Set securityContext {runAsNonRoot: true, runAsUser: <uid>, allowPrivilegeEscalation: false, "
        "readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}; "
        "mount emptyDir for /tmp and caches.",
        validate=_workload(_security_context),
        tags=["kubernetes", "pod-security"],
    ),
    resource_policy(
        name="k8s-probes",
        description="Every container of a Deployment, StatefulSet or DaemonSet has a readiness and a liveness probe.",
        severity=Severity.MEDIUM,
        remediation="Add readinessProbe (traffic only when dependencies answer) and livenessProbe (restart "
        "when wedged); add a startupProbe where start-up is slow (model load).",
        validate=_workload(_probes),
        tags=["kubernetes", "reliability"],
    ),
    resource_policy(
        name="k8s-no-host-access",
        description="Pods do not use hostNetwork, hostPID, hostIPC, hostPath volumes or hostPorts.",
        severity=Severity.CRITICAL,
        remediation="Use emptyDir/PVC volumes and Services instead of host namespaces, paths and ports.",
        validate=_workload(_host_access),
        tags=["kubernetes", "pod-security"],
    ),
    stack_policy(
        name="k8s-namespace-pss-restricted",
        description="Namespaces enforce the Pod Security Standard 'restricted' (listed exemptions excepted).",
        severity=Severity.HIGH,
        remediation="Label the namespace pod-security.kubernetes.io/enforce=restricted (and audit/warn); put "
        "add-ons that need privileges in a separate namespace listed in the pack's exemptNamespaces.",
        validate=_pss,
        schema=config_schema({"exemptNamespaces": {"type": "array", "items": {"type": "string"}, "default": []}}),
        tags=["kubernetes", "pod-security"],
    ),
    stack_policy(
        name="k8s-default-deny-network-policy",
        description="Every app namespace has a default-deny NetworkPolicy for ingress and egress.",
        severity=Severity.HIGH,
        remediation="Add a NetworkPolicy with podSelector {}, policyTypes [Ingress, Egress] and no rules, then "
        "explicit allow policies per flow.",
        validate=_default_deny,
        schema=config_schema({"exemptNamespaces": {"type": "array", "items": {"type": "string"}, "default": []}}),
        tags=["kubernetes", "network"],
    ),
    stack_policy(
        name="k8s-pod-disruption-budget",
        description="Deployments and StatefulSets with more than one replica (or an HPA minimum above one) have "
        "a PodDisruptionBudget that still allows a disruption.",
        severity=Severity.MEDIUM,
        remediation="Add a policy/v1 PodDisruptionBudget selecting the pods with maxUnavailable: 1.",
        validate=_pdb,
        tags=["kubernetes", "availability"],
    ),
    stack_policy(
        name="k8s-no-pod-subnet-sources",
        description="No NetworkPolicy ipBlock admits, and no TRUSTED_PROXIES trusts, a CIDR holding the node "
        "groups' (pod) subnets: with the VPC CNI that would let every pod in.",
        severity=Severity.HIGH,
        remediation="Admit the ALB by its public subnets, the control plane and scraper by their own subnets "
        "(infra/network.py tier `control`); select pods with podSelector, never by address.",
        validate=_no_pod_sources,
        tags=["kubernetes", "network"],
    ),
    resource_policy(
        name="k8s-no-external-service",
        description="Services are not LoadBalancer or NodePort: the ALB we manage is the only way in.",
        severity=Severity.HIGH,
        remediation="Use type ClusterIP and bind it to the ALB target group with a TargetGroupBinding.",
        validate=_service_type,
        tags=["kubernetes", "network", "cost"],
    ),
]
