"""Cluster: the EKS control plane, its node groups, add-ons, IRSA and the Kubernetes provider for workloads.

Secure by construction: private API endpoint (a public one only with an explicit CIDR allow-list, never
0.0.0.0/0), Kubernetes secrets envelope-encrypted with the EKS key, control-plane logs (api, audit,
authenticator, controllerManager, scheduler) to a KMS-encrypted log group with retention, authentication by EKS
access entries only, and no implicit admin for whoever created the cluster: every admin is an explicit access entry.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.cluster_iam import ClusterIam, ClusterIamArgs
from infra.iam import irsa_trust, kms_use_policy, managed_policy_arn
from infra.naming import LOG_RETENTION_DAYS
from infra.node_group import GPU_LABEL, GPU_TAINT, NodeGroup, NodeGroupArgs, NodePool

__all__ = ["GPU_LABEL", "GPU_TAINT", "STORAGE_CLASS_NAME", "AddonVersions", "Cluster", "ClusterArgs", "NodePool"]

STORAGE_CLASS_NAME = "gp3-encrypted"
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# Read-only: every object except Secrets. What CI's preview role needs for `pulumi preview` (the Kubernetes
# provider falls back to a client-side diff when the server-side dry-run patch is forbidden); it cannot read the
# synced application secrets, hence no `refresh` in preview (Helm release state lives in Secrets).
CLUSTER_VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
SUPPORTED_VERSIONS = ("1.31", "1.32", "1.33", "1.34")
_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}[a-z0-9]$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")


@dataclass(frozen=True, kw_only=True)
class AddonVersions:
    vpc_cni: str
    coredns: str
    kube_proxy: str
    ebs_csi_driver: str
    pod_identity_agent: str


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster_name: str
    kubernetes_version: str
    region: str
    # Nodes (and so every pod, VPC CNI) live in the private subnets.
    private_subnet_ids: Sequence[pulumi.Input[str]]
    # The cluster's own subnets, where EKS places the control plane's cross-account ENIs (network tier
    # `control`): apart from the pods so that webhook NetworkPolicies can admit exactly these CIDRs.
    control_plane_subnet_ids: Sequence[pulumi.Input[str]]
    vpc_id: pulumi.Input[str]
    endpoint_public_access: bool
    public_access_cidrs: Sequence[str]
    eks_key_arn: pulumi.Input[str]
    ebs_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    admin_role_arns: Sequence[str]
    # The identity that runs `pulumi up`: granted admin through its own explicit access entry (not the implicit
    # creator admin) so the Kubernetes provider can apply the storage class and the workloads.
    deployer_role_arn: pulumi.Input[str]
    # Read-only principals (CI's preview role): an access entry with CLUSTER_VIEW_POLICY each.
    viewer_role_arns: Sequence[str] = ()
    addons: AddonVersions
    system_nodes: NodePool
    gpu_nodes: NodePool
    deletion_protection: bool
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: ClusterArgs) -> None:
    if not _CLUSTER_NAME.match(args.cluster_name):
        raise ValueError(f"cluster_name: {args.cluster_name!r} is not a valid EKS cluster name")
    if args.kubernetes_version not in SUPPORTED_VERSIONS:
        raise ValueError(f"kubernetes_version: {args.kubernetes_version!r}; allowed: {', '.join(SUPPORTED_VERSIONS)}")
    for cidr in args.public_access_cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"public_access_cidrs: {cidr!r} is not a CIDR") from None
        if net.prefixlen == 0:
            raise ValueError(f"public_access_cidrs: {cidr!r} opens the API server to the internet")
    if args.endpoint_public_access and not args.public_access_cidrs:
        raise ValueError("public_access_cidrs: a public endpoint needs a non-empty allow-list (got [])")
    if not args.endpoint_public_access and args.public_access_cidrs:
        raise ValueError(f"public_access_cidrs: {list(args.public_access_cidrs)} given for a private-only endpoint")
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"log_retention_days: {args.log_retention_days} is not a CloudWatch retention; allowed: "
            f"{sorted(LOG_RETENTION_DAYS)}"
        )
    for arn in args.admin_role_arns:
        if not ROLE_ARN.match(arn):
            raise ValueError(f"admin_role_arns: {arn!r} is not an IAM role ARN")
    for arn in args.viewer_role_arns:
        if not ROLE_ARN.match(arn):
            raise ValueError(f"viewer_role_arns: {arn!r} is not an IAM role ARN")
        if arn in args.admin_role_arns or arn == args.deployer_role_arn:
            raise ValueError(f"viewer_role_arns: {arn!r} is also an admin (one access entry per role)")
    if len(args.private_subnet_ids) < 2:
        raise ValueError("private_subnet_ids: EKS needs subnets in at least two AZs")
    if len(args.control_plane_subnet_ids) < 2:
        raise ValueError("control_plane_subnet_ids: EKS needs cluster subnets in at least two AZs")
    if not args.addons.kube_proxy.startswith(f"v{args.kubernetes_version}."):
        raise ValueError(
            f"addons.kube_proxy: {args.addons.kube_proxy!r} does not match kubernetes_version "
            f"{args.kubernetes_version!r}"
        )


def _kubeconfig(name: str, endpoint: str, ca: str, region: str) -> str:
    # Short-lived tokens from `aws eks get-token` (the caller's own IAM identity): nothing long-lived is stored.
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                name,
                                "--region",
                                region,
                                "--output",
                                "json",
                            ],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


class Cluster(pulumi.ComponentResource):
    GPU_TAINT = GPU_TAINT
    GPU_LABEL = GPU_LABEL

    cluster: aws.eks.Cluster
    iam: ClusterIam
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    storage_class_name: str
    node_groups: dict[str, NodeGroup]
    addons: dict[str, aws.eks.Addon]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        tags = dict(args.tags)

        self.iam = ClusterIam(
            f"{name}-iam",
            ClusterIamArgs(cluster_name=args.cluster_name, eks_key_arn=args.eks_key_arn, tags=tags),
            opts=child,
        )

        # EKS writes control-plane logs to exactly this group; creating it first is what gives it our key and
        # retention instead of an unencrypted, never-expiring group created by EKS.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags,
            opts=child,
        )

        # Cluster subnets are where EKS creates its 2-4 control-plane ENIs (API server, webhooks' callers,
        # kubelet/exec tunnels); nodes may sit in other subnets of the VPC (EKS network requirements).
        vpc_config = aws.eks.ClusterVpcConfigArgs(
            subnet_ids=list(args.control_plane_subnet_ids),
            endpoint_private_access=True,
            endpoint_public_access=args.endpoint_public_access,
            public_access_cidrs=list(args.public_access_cidrs) if args.endpoint_public_access else None,
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=self.iam.cluster_role_arn,
            vpc_config=vpc_config,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args.eks_key_arn),
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            # Every add-on below is a pinned managed add-on; the unmanaged defaults would be unpinned duplicates.
            bootstrap_self_managed_addons=False,
            # STANDARD: a version past standard support is an upgrade alarm, not a silent extended-support bill.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=args.deletion_protection,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, self.iam]),
        )
        self.name = self.cluster.name
        self.arn = self.cluster.arn
        self.endpoint = self.cluster.endpoint
        self.cluster_security_group_id = self.cluster.vpc_config.apply(lambda v: v.cluster_security_group_id or "")

        # Admins: the deployer and the configured roles, each an explicit access entry with the admin policy;
        # viewers (CI's preview role) an entry with the read-only view policy.
        admins: list[tuple[str, pulumi.Input[str], str]] = [("deployer", args.deployer_role_arn, "admin")]
        admins += [(f"admin-{arn.rsplit('/', 1)[-1].lower()}", arn, "admin") for arn in args.admin_role_arns]
        admins += [(f"viewer-{arn.rsplit('/', 1)[-1].lower()}", arn, "view") for arn in args.viewer_role_arns]
        access: list[pulumi.Resource] = []
        for label, principal, level in admins:
            entry = aws.eks.AccessEntry(
                f"{name}-{label}",
                cluster_name=self.cluster.name,
                principal_arn=principal,
                type="STANDARD",
                tags=tags,
                opts=child,
            )
            access.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-{label}-{level}",
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=CLUSTER_ADMIN_POLICY if level == "admin" else CLUSTER_VIEW_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=child,
                )
            )

        # IRSA: an OIDC provider for the cluster's issuer; each workload role trusts one service account.
        issuer_url = self.cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer if ids and ids[0].oidcs else "")
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            tags=tags,
            opts=child,
        )
        self.oidc_provider_arn = self.oidc_provider.arn
        self.oidc_issuer = issuer_url.apply(lambda u: (u or "").removeprefix("https://"))

        # Nodes: our own security group (the target of ALB, scraper and cache rules) next to the EKS cluster SG
        # (node <-> control plane). No rules here: each consumer adds the narrow rule it needs.
        # No `kubernetes.io/cluster/<name>` tag: EKS already puts it on the cluster SG, and the load balancer
        # controller refuses an ENI carrying two SGs with that tag ("expect exactly one securityGroup tagged
        # with kubernetes.io/cluster/<name>"); see docs/workloads.md.
        node_sg = aws.ec2.SecurityGroup(
            f"{name}-node-sg",
            name=f"{args.cluster_name}-nodes",
            description=f"EKS nodes of {args.cluster_name}: ingress only from named load balancer/scraper groups",
            vpc_id=args.vpc_id,
            tags=tags,
            opts=child,
        )
        self.node_security_group_id = node_sg.id

        # Networking add-ons come before nodes: without the CNI a node never becomes Ready and the node group
        # creation fails.
        self.addons = {}
        self.addons["vpc-cni"] = self._addon(
            name,
            "vpc-cni",
            args.addons.vpc_cni,
            # Network policy enforcement in the VPC CNI (eBPF node agent): the workloads' NetworkPolicies are
            # enforced, not just stored.
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            tags=tags,
        )
        self.addons["kube-proxy"] = self._addon(name, "kube-proxy", args.addons.kube_proxy, tags=tags)
        self.addons["eks-pod-identity-agent"] = self._addon(
            name, "eks-pod-identity-agent", args.addons.pod_identity_agent, tags=tags
        )

        self.node_groups = {}
        for pool_name, pool, gpu in (("system", args.system_nodes, False), ("gpu", args.gpu_nodes, True)):
            self.node_groups[pool_name] = NodeGroup(
                f"{name}-{pool_name}",
                NodeGroupArgs(
                    cluster_name=self.cluster.name,
                    node_group_name=f"{args.cluster_name}-{pool_name}",
                    kubernetes_version=args.kubernetes_version,
                    node_role_arn=self.iam.node_role_arn,
                    subnet_ids=args.private_subnet_ids,
                    security_group_ids=[self.cluster_security_group_id, node_sg.id],
                    ebs_key_arn=args.ebs_key_arn,
                    pool=pool,
                    gpu=gpu,
                    tags=tags,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.addons["vpc-cni"], self.addons["kube-proxy"]]
                ),
            )
        nodes = list(self.node_groups.values())

        # EBS CSI driver: its controller alone may create/attach volumes, under the EBS key only.
        ebs_ns, ebs_sa = EBS_CSI_SERVICE_ACCOUNT
        ebs_role = aws.iam.Role(
            f"{name}-ebs-csi",
            name=f"{args.cluster_name}-ebs-csi",
            assume_role_policy=irsa_trust(
                oidc_provider_arn=self.oidc_provider_arn,
                oidc_issuer=self.oidc_issuer,
                namespace=ebs_ns,
                service_account=ebs_sa,
                opts=invoke,
            ),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-driver-policy",
            role=ebs_role.name,
            policy_arn=managed_policy_arn("service-role/AmazonEBSCSIDriverPolicy"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-ebs-csi-key",
            role=ebs_role.id,
            policy=kms_use_policy([args.ebs_key_arn], grants_for_aws_resources=True, opts=invoke),
            opts=child,
        )
        self.ebs_csi_role_arn = ebs_role.arn

        # Scheduled add-ons need nodes to run on, otherwise they sit DEGRADED until the create times out.
        self.addons["coredns"] = self._addon(name, "coredns", args.addons.coredns, tags=tags, depends_on=nodes)
        self.addons["aws-ebs-csi-driver"] = self._addon(
            name,
            "aws-ebs-csi-driver",
            args.addons.ebs_csi_driver,
            service_account_role_arn=ebs_role.arn,
            tags=tags,
            depends_on=nodes,
        )

        ca = self.cluster.certificate_authority.apply(lambda c: c.data or "")
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, self.endpoint, ca).apply(
                lambda a: _kubeconfig(a[0], a[1], a[2], args.region)
            )
        )
        # Created after the deployer's access policy association: before it, every API call would be refused.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=access),
        )

        self.storage_class_name = STORAGE_CLASS_NAME
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3-encrypted",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=STORAGE_CLASS_NAME,
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            parameters={
                "type": "gp3",
                "encrypted": "true",
                "kmsKeyId": args.ebs_key_arn,  # type: ignore[dict-item]  # an Output[str] resolves to a string
                "csi.storage.k8s.io/fstype": "ext4",
            },
            # A volume is bound where its first pod lands: a volume created in another AZ could never attach.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            # Deleting a claim (or the StatefulSet) must not destroy Qdrant's data; volumes are removed on purpose.
            reclaim_policy="Retain",
            opts=pulumi.ResourceOptions(
                parent=self, provider=self.provider, depends_on=[self.addons["aws-ebs-csi-driver"]]
            ),
        )

        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
                "node_security_group_id": self.node_security_group_id,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _addon(
        self,
        name: str,
        addon: str,
        version: str,
        *,
        tags: Mapping[str, str],
        configuration_values: str | None = None,
        service_account_role_arn: pulumi.Input[str] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=self.cluster.name,
            addon_name=addon,
            addon_version=version,
            configuration_values=configuration_values,
            service_account_role_arn=service_account_role_arn,
            # The add-on's configuration is this code: drift made by hand is overwritten, not kept.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
