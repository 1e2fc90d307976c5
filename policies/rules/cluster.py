"""EKS: endpoint exposure, secrets encryption, control-plane logs, node hardening, GPU node groups."""

from __future__ import annotations

import ipaddress
import json
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
    present,
    resource_policy,
    stack_policy,
    truthy,
)

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SUBNET = "aws:ec2/subnet:Subnet"
ADDON = "aws:eks/addon:Addon"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NETWORK_POLICY_ENGINES = {"calico", "tigera-operator", "cilium"}
DEVICE_PLUGIN_CHARTS = {"nvidia-device-plugin", "gpu-operator"}
GPU_FAMILIES_DEFAULT = ["g5", "g6", "g6e", "p4d", "p5"]
GPU_AMI_TYPES = ["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "AL2_x86_64_GPU", "BOTTLEROCKET_ARM_64_NVIDIA"]
# Families that carry NVIDIA GPUs: a node group using one is a GPU node group whatever its AMI says.
_GPU_FAMILY_PREFIXES = (
    "g4dn",
    "g5",
    "g5g",
    "g6",
    "g6e",
    "g6f",
    "gr6",
    "p3",
    "p3dn",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "p6",
)


def family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def is_gpu_instance(instance_type: str) -> bool:
    return family(instance_type) in _GPU_FAMILY_PREFIXES


def _endpoint(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != CLUSTER:
        return
    vpc = get(args.props, "vpcConfig") or {}
    if not truthy(get(vpc, "endpointPrivateAccess")):
        report("vpcConfig.endpointPrivateAccess is not true: nodes would reach the API server over the internet")
    public = get(vpc, "endpointPublicAccess")
    if public is not None and not truthy(public):
        return
    # Unset means public: the EKS API defaults endpointPublicAccess to true.
    if not knob(args, "allowPublicEndpoint", False):
        report(
            "the API server endpoint is public (vpcConfig.endpointPublicAccess is not false); this stack "
            "requires a private endpoint"
        )
        return
    cidrs = [str(c) for c in as_list(get(vpc, "publicAccessCidrs"))]
    if not cidrs:
        report("public endpoint without publicAccessCidrs: EKS opens it to 0.0.0.0/0")
        return
    allowed = [ipaddress.ip_network(c, strict=False) for c in knob(args, "allowedPublicCidrs", [])]
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            report(f"publicAccessCidrs entry {cidr!r} is not a CIDR")
            continue
        if net.prefixlen == 0:
            report(f"publicAccessCidrs contains {cidr}: the API server would be open to the internet")
        elif not any(net.version == a.version and net.subnet_of(a) for a in allowed):  # type: ignore[arg-type]
            report(
                f"publicAccessCidrs entry {cidr} is not within the pack's allowedPublicCidrs "
                f"{[str(a) for a in allowed]}"
            )


def _access(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != CLUSTER:
        return
    access = get(args.props, "accessConfig") or {}
    mode = get(access, "authenticationMode")
    if mode not in ("API", "API_AND_CONFIG_MAP"):
        report(
            f"accessConfig.authenticationMode is {mode!r}: use access entries (API), not only the aws-auth ConfigMap"
        )
    # EKS defaults this to true: whoever ran `pulumi up` would stay cluster admin, invisibly.
    if get(access, "bootstrapClusterCreatorAdminPermissions") is not False:
        report(
            "accessConfig.bootstrapClusterCreatorAdminPermissions is not false: grant admins through access "
            "entries instead of the creator's implicit admin"
        )


def _network_policy_enforced(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    if not of_type(resources, NETWORK_POLICY):
        return
    for addon in of_type(resources, ADDON):
        if get(addon.props, "addonName") != "vpc-cni":
            continue
        values = get(addon.props, "configurationValues")
        try:
            parsed = json.loads(values) if isinstance(values, str) else {}
        except json.JSONDecodeError:
            parsed = {}
        if truthy(parsed.get("enableNetworkPolicy")) if isinstance(parsed, dict) else False:
            return
    for release in of_type(resources, HELM_RELEASE):
        if str(peek(release.props, "chart")) in NETWORK_POLICY_ENGINES:
            return
    report(
        "the stack creates NetworkPolicies but nothing enforces them: set the vpc-cni add-on's "
        'configurationValues {"enableNetworkPolicy": "true"} (or install Calico/Cilium)'
    )


_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def _tolerates(tolerations: list[Any], taint: Any) -> bool:
    key, value, effect = get(taint, "key"), get(taint, "value"), _EFFECTS.get(str(get(taint, "effect")))
    for t in tolerations:
        if get(t, "effect") not in (None, "", effect):
            continue
        if get(t, "operator") == "Exists" and get(t, "key") in (None, "", key):
            return True
        if get(t, "key") == key and get(t, "operator") in (None, "Equal") and get(t, "value") == value:
            return True
    return False


def _device_plugin(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    gpu_groups = [ng for ng in of_type(resources, NODE_GROUP) if _is_gpu_group(ng, resources)]
    if not gpu_groups:
        return
    plugins = [r for r in of_type(resources, HELM_RELEASE) if str(get(r.props, "chart")) in DEVICE_PLUGIN_CHARTS]
    if not plugins:
        report(
            "GPU node groups exist but no NVIDIA device plugin (or GPU operator) release: nodes would never "
            "advertise nvidia.com/gpu",
            gpu_groups[0].urn,
        )
        return
    for plugin in plugins:
        if not is_set(get(plugin.props, "version")):
            report(f"Helm release {plugin.name} does not pin a chart version", plugin.urn)
        values = get(plugin.props, "values") or {}
        tolerations = as_list(get(values, "tolerations")) + as_list(get(values, "daemonsets", "tolerations"))
        for ng in gpu_groups:
            for taint in as_list(get(ng.props, "taints")):
                # PreferNoSchedule never keeps a pod off a node; only the blocking effects need a toleration.
                blocking = get(taint, "effect") in ("NO_SCHEDULE", "NO_EXECUTE")
                if blocking and not _tolerates(tolerations, taint):
                    report(
                        f"Helm release {plugin.name} does not tolerate {get(taint, 'key')}={get(taint, 'value')}:"
                        f"{get(taint, 'effect')} of node group {ng.name}: the plugin never runs on GPU nodes",
                        plugin.urn,
                    )


def _is_gpu_group(ng: PolicyResource, resources: list[PolicyResource]) -> bool:
    templates = of_type(resources, LAUNCH_TEMPLATE)
    types = [str(t) for t in as_list(get(ng.props, "instanceTypes"))]
    types += [
        str(get(t.props, "instanceType"))
        for t in _launch_templates(ng, templates)
        if is_set(get(t.props, "instanceType"))
    ]
    ami = get(ng.props, "amiType")
    return any(is_gpu_instance(t) for t in types) or (isinstance(ami, str) and ("NVIDIA" in ami or "GPU" in ami))


def _secrets_encryption(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != CLUSTER:
        return
    for cfg in as_list(get(args.props, "encryptionConfig")):
        if "secrets" in as_list(get(cfg, "resources")) and present(cfg, "provider", "keyArn"):
            return
    report("encryptionConfig does not envelope-encrypt 'secrets' with a KMS key (provider.keyArn)")


def _control_plane_logs(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != CLUSTER:
        return
    required = knob(args, "requiredLogTypes", ["api", "audit", "authenticator"])
    enabled = [str(t) for t in as_list(get(args.props, "enabledClusterLogTypes"))]
    missing = [t for t in required if t not in enabled]
    if missing:
        report(f"enabledClusterLogTypes lacks {missing} (has {enabled})")


def _launch_template_imds(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != LAUNCH_TEMPLATE:
        return
    md = get(args.props, "metadataOptions") or {}
    if get(md, "httpTokens") != "required":
        report(f"metadataOptions.httpTokens is {get(md, 'httpTokens')!r}: IMDSv2 must be 'required'")
    hops = number(get(md, "httpPutResponseHopLimit"))
    limit = knob(args, "maxHopLimit", 1)
    if hops is None or hops > limit:
        report(
            f"metadataOptions.httpPutResponseHopLimit is {hops}: pods could reach the node's IMDS "
            f"credentials; the limit is {limit}"
        )


def _launch_template_volumes(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != LAUNCH_TEMPLATE:
        return
    mappings = as_list(get(args.props, "blockDeviceMappings"))
    if not mappings:
        report("no blockDeviceMappings: the root volume would use the AMI's unencrypted default")
        return
    for m in mappings:
        ebs = get(m, "ebs")
        if ebs is None:
            continue
        device = get(m, "deviceName")
        if not truthy(get(ebs, "encrypted")):
            report(f"volume {device}: ebs.encrypted is not true")
        if knob(args, "requireCustomerKey", True) and not present(ebs, "kmsKeyId"):
            report(f"volume {device}: ebs.kmsKeyId is not set (use the EBS customer-managed key)")


def _launch_templates(ng: PolicyResource, templates: list[PolicyResource]) -> list[PolicyResource]:
    lt = peek(ng.props, "launchTemplate") or {}
    ref = peek(lt, "id") or peek(lt, "name")
    deps = {d.urn for d in ng.dependencies}
    found = [t for t in templates if t.urn in deps]
    if not found and isinstance(ref, str):
        found = [t for t in templates if ref in {t.name, peek(t.props, "name")}]
    return found


def _node_groups(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    subnets = of_type(resources, SUBNET)
    for ng in of_type(resources, NODE_GROUP):
        if not is_set(get(ng.props, "launchTemplate")):
            report(
                f"node group {ng.name} has no launchTemplate: IMDSv2/hop limit and volume encryption cannot "
                "be enforced",
                ng.urn,
            )
        if is_set(get(ng.props, "remoteAccess")):
            report(f"node group {ng.name} enables remoteAccess (SSH); use SSM Session Manager", ng.urn)
        ids = {str(s) for s in as_list(get(ng.props, "subnetIds"))}
        dep_urns = {d.urn for d in ng.dependencies}
        mine = [s for s in subnets if s.urn in dep_urns or ids & {s.name, str(peek(s.props, "id"))}]
        for s in mine:
            tags = peek(s.props, "tags") or {}
            if truthy(peek(s.props, "mapPublicIpOnLaunch")) or str(peek(tags, "kubernetes.io/role/elb")) == "1":
                report(f"node group {ng.name} uses public subnet {s.name}; nodes belong in private subnets", ng.urn)


def _gpu_node_groups(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    templates = of_type(resources, LAUNCH_TEMPLATE)
    families = knob(args, "allowedInstanceFamilies", GPU_FAMILIES_DEFAULT)
    amis = knob(args, "allowedAmiTypes", GPU_AMI_TYPES[:2])
    for ng in of_type(resources, NODE_GROUP):
        types = [str(t) for t in as_list(get(ng.props, "instanceTypes"))]
        for t in _launch_templates(ng, templates):
            if is_set(get(t.props, "instanceType")):
                types.append(str(get(t.props, "instanceType")))
        ami = get(ng.props, "amiType")
        gpu = any(is_gpu_instance(t) for t in types) or (isinstance(ami, str) and ("NVIDIA" in ami or "GPU" in ami))
        if not gpu:
            continue
        wrong = [t for t in types if family(t) not in families]
        if wrong:
            report(f"GPU node group {ng.name} uses {wrong}; allowed families: {families}", ng.urn)
        if not types:
            report(f"GPU node group {ng.name} names no instance type", ng.urn)
        if ami not in amis:
            report(
                f"GPU node group {ng.name} has amiType {ami!r}; allowed: {amis} (NVIDIA drivers preinstalled)", ng.urn
            )
        taints = as_list(get(ng.props, "taints"))
        if not any(get(t, "key") == "nvidia.com/gpu" and get(t, "effect") == "NO_SCHEDULE" for t in taints):
            report(
                f"GPU node group {ng.name} lacks the taint nvidia.com/gpu:NO_SCHEDULE, so any pod could land "
                "on (and keep alive) a GPU node",
                ng.urn,
            )


_FAMILIES_SCHEMA = {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}}

POLICIES: list[Policy] = [
    resource_policy(
        name="eks-endpoint-private",
        description="The EKS API server endpoint is private, or (where the stack allows it) public only to "
        "allow-listed CIDRs, never 0.0.0.0/0.",
        severity=Severity.CRITICAL,
        remediation="Set vpc_config endpoint_private_access=True, endpoint_public_access=False; where a public "
        "endpoint is allowed, list public_access_cidrs inside the pack's allowedPublicCidrs.",
        validate=_endpoint,
        schema=config_schema(
            {
                "allowPublicEndpoint": {"type": "boolean", "default": False},
                "allowedPublicCidrs": {"type": "array", "items": {"type": "string"}, "default": []},
            }
        ),
        tags=["eks", "network"],
    ),
    resource_policy(
        name="eks-access-entries",
        description="EKS uses access entries (authenticationMode API) and grants no implicit admin to the "
        "identity that created the cluster.",
        severity=Severity.HIGH,
        remediation="Set access_config={'authentication_mode': 'API', "
        "'bootstrap_cluster_creator_admin_permissions': False} and add aws.eks.AccessEntry + "
        "AccessPolicyAssociation for the admin roles.",
        validate=_access,
        tags=["eks", "identity"],
    ),
    stack_policy(
        name="eks-network-policy-enforced",
        description="When the stack creates NetworkPolicies, the cluster enforces them (vpc-cni network policy "
        "on, or Calico/Cilium installed).",
        severity=Severity.HIGH,
        remediation='Set configuration_values=\'{"enableNetworkPolicy": "true"}\' on the vpc-cni aws.eks.Addon.',
        validate=_network_policy_enforced,
        tags=["eks", "network", "kubernetes"],
    ),
    resource_policy(
        name="eks-secrets-encryption",
        description="EKS envelope-encrypts Kubernetes secrets with a customer-managed KMS key.",
        severity=Severity.HIGH,
        remediation="Set encryption_config={'resources': ['secrets'], 'provider': {'key_arn': <eks key arn>}}.",
        validate=_secrets_encryption,
        tags=["eks", "encryption"],
    ),
    resource_policy(
        name="eks-control-plane-logs",
        description="EKS sends the api, audit and authenticator control-plane logs to CloudWatch.",
        severity=Severity.MEDIUM,
        remediation="Set enabled_cluster_log_types=['api', 'audit', 'authenticator'] (and create the "
        "/aws/eks/<name>/cluster log group first, encrypted, with retention).",
        validate=_control_plane_logs,
        schema=config_schema(
            {
                "requiredLogTypes": {
                    "type": "array",
                    "default": ["api", "audit", "authenticator"],
                    "items": {"enum": ["api", "audit", "authenticator", "controllerManager", "scheduler"]},
                }
            }
        ),
        tags=["eks", "audit"],
    ),
    resource_policy(
        name="launch-template-imdsv2",
        description="Launch templates require IMDSv2 with a hop limit of 1, so pods cannot take the node role.",
        severity=Severity.HIGH,
        remediation="Set metadata_options={'http_tokens': 'required', 'http_put_response_hop_limit': 1, "
        "'http_endpoint': 'enabled'}; give pods their own roles (IRSA / Pod Identity).",
        validate=_launch_template_imds,
        schema=config_schema({"maxHopLimit": {"type": "integer", "minimum": 1, "maximum": 2, "default": 1}}),
        tags=["eks", "ec2", "identity"],
    ),
    resource_policy(
        name="launch-template-encrypted-volumes",
        description="Launch templates encrypt every EBS volume with the customer-managed EBS key.",
        severity=Severity.HIGH,
        remediation="Add block_device_mappings=[{'device_name': '/dev/xvda', 'ebs': {'encrypted': 'true', "
        "'kms_key_id': <ebs key arn>, 'volume_type': 'gp3', 'volume_size': N}}].",
        validate=_launch_template_volumes,
        schema=config_schema({"requireCustomerKey": {"type": "boolean", "default": True}}),
        tags=["eks", "ec2", "encryption"],
    ),
    stack_policy(
        name="eks-node-group-hardening",
        description="EKS node groups use a launch template, allow no SSH and run only in private subnets.",
        severity=Severity.HIGH,
        remediation="Give every aws.eks.NodeGroup a launch_template, drop remote_access and pass only private "
        "subnet ids.",
        validate=_node_groups,
        tags=["eks", "network"],
    ),
    stack_policy(
        name="gpu-device-plugin",
        description="Where GPU node groups exist, a pinned NVIDIA device plugin (or GPU operator) release "
        "tolerates exactly their taints, so GPU nodes advertise nvidia.com/gpu.",
        severity=Severity.HIGH,
        remediation="Install the nvidia-device-plugin chart at a pinned version with tolerations [{key: "
        "nvidia.com/gpu, operator: Equal, value: 'true', effect: NoSchedule}] matching the node group taint.",
        validate=_device_plugin,
        tags=["eks", "gpu", "kubernetes"],
    ),
    stack_policy(
        name="eks-gpu-node-group",
        description="GPU node groups use allowed GPU instance families and an NVIDIA AMI type, and carry the "
        "nvidia.com/gpu NO_SCHEDULE taint.",
        severity=Severity.HIGH,
        remediation="Use instance types from the allowed families, ami_type AL2023_x86_64_NVIDIA, and "
        "taints=[{'key': 'nvidia.com/gpu', 'value': 'true', 'effect': 'NO_SCHEDULE'}].",
        validate=_gpu_node_groups,
        schema=config_schema(
            {
                "allowedInstanceFamilies": {**_FAMILIES_SCHEMA, "default": GPU_FAMILIES_DEFAULT},
                "allowedAmiTypes": {"type": "array", "items": {"type": "string"}, "default": GPU_AMI_TYPES[:2]},
            }
        ),
        tags=["eks", "gpu", "cost"],
    ),
]
