"""Cluster: control plane exposure, envelope encryption, logs, access entries, IRSA, pinned add-ons, storage class."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from infra.cluster import (
    CLUSTER_ADMIN_POLICY,
    CLUSTER_VIEW_POLICY,
    STORAGE_CLASS_NAME,
    AddonVersions,
    Cluster,
    ClusterArgs,
    NodePool,
)
from infra.cluster_iam import NODE_MANAGED_POLICIES
from stacks.config import ConfigError
from stacks.engine.aws_values import check_aws_values
from stacks.engine.offline import Record, RecordedResource, run_stack
from tests.infra.platform_graph import ADMIN_ROLE, EDITED_DEV, STACKS, component, key_arn, policy, statements, under

EKS = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
ROLE = "aws:iam/role:Role"


def _cluster(record: Record) -> RecordedResource:
    return component(record, "visionrag:infra:Cluster")


def _eks(record: Record) -> RecordedResource:
    (eks,) = under(record, _cluster(record), EKS)
    return eks


@pytest.mark.parametrize("stack", STACKS)
def test_control_plane_is_private_except_allow_listed_dev(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    vpc = _eks(record).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    cfg = record.config.cluster
    if stack == "dev":
        assert vpc["endpointPublicAccess"] is True
        assert vpc["publicAccessCidrs"] == cfg.public_access_cidrs
        assert "0.0.0.0/0" not in vpc["publicAccessCidrs"]
    else:
        assert vpc["endpointPublicAccess"] is False
        assert not vpc.get("publicAccessCidrs")
    # Control plane ENIs in the dedicated `control` subnets, never where the pods are (NetworkPolicies admit
    # webhook calls from exactly these CIDRs).
    subnets = sorted(record.of_type("aws:ec2/subnet:Subnet"), key=lambda r: r.name)
    control = [r.outputs["id"] for r in subnets if r.inputs["tags"]["subnet-tier"] == "control"]
    assert len(control) >= 2 and vpc["subnetIds"] == control
    assert not set(vpc["subnetIds"]) & set(record.outputs["privateSubnetIds"])


@pytest.mark.parametrize("stack", STACKS)
def test_version_pinned_secrets_encrypted_logs_on(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    eks = _eks(record)
    assert eks.inputs["version"] == record.config.cluster.kubernetes_version
    (enc,) = (
        eks.inputs["encryptionConfig"]
        if isinstance(eks.inputs["encryptionConfig"], list)
        else [eks.inputs["encryptionConfig"]]
    )
    assert enc["resources"] == ["secrets"]
    assert enc["provider"]["keyArn"] == key_arn(record, "eks")
    assert {"api", "audit", "authenticator"} <= set(eks.inputs["enabledClusterLogTypes"])
    assert eks.inputs["bootstrapSelfManagedAddons"] is False
    assert eks.inputs["deletionProtection"] is (stack != "dev")

    (log_group,) = under(record, _cluster(record), "aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == f"/aws/eks/{eks.inputs['name']}/cluster"
    assert log_group.inputs["kmsKeyId"] == key_arn(record, "logs")
    assert log_group.inputs["retentionInDays"] == record.config.cluster.log_retention_days
    # The group exists before the cluster, otherwise EKS creates its own unencrypted one.
    assert log_group.urn in eks.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_no_implicit_creator_admin_only_explicit_access_entries(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    eks = _eks(record)
    assert eks.inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    entries = under(record, _cluster(record), "aws:eks/accessEntry:AccessEntry")
    assocs = under(record, _cluster(record), "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    # The deploy role (config; dev without one: the caller's role), each configured admin role, and CI's
    # preview role read-only (config, outside dev).
    cc = record.config.cluster
    deployer = cc.deploy_role_arn or "arn:aws:iam::123456789012:role/visionrag-deployer"
    policies = {a.inputs["principalArn"]: a.inputs["policyArn"] for a in assocs}
    assert len(assocs) == len(entries) == len(policies)
    assert {e.inputs["principalArn"] for e in entries} == set(policies)
    expected = {deployer: CLUSTER_ADMIN_POLICY, **dict.fromkeys(cc.admin_role_arns, CLUSTER_ADMIN_POLICY)}
    if cc.preview_role_arn:
        expected[cc.preview_role_arn] = CLUSTER_VIEW_POLICY
    assert policies == expected
    assert stack == "dev" or (cc.preview_role_arn and cc.deploy_role_arn)
    for a in assocs:
        assert a.inputs["accessScope"] == {"type": "cluster"}


def test_admin_roles_from_config_get_access_entries(record_of: Any) -> None:
    record = record_of("dev", overrides=EDITED_DEV)
    entries = under(record, _cluster(record), "aws:eks/accessEntry:AccessEntry")
    assert ADMIN_ROLE in {e.inputs["principalArn"] for e in entries}


@pytest.mark.parametrize("stack", STACKS)
def test_managed_addons_pinned_with_network_policy(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    addons = {a.inputs["addonName"]: a for a in under(record, _cluster(record), ADDON)}
    versions = record.config.cluster.addons
    assert {name: a.inputs["addonVersion"] for name, a in addons.items()} == {
        "vpc-cni": versions.vpc_cni,
        "coredns": versions.coredns,
        "kube-proxy": versions.kube_proxy,
        "aws-ebs-csi-driver": versions.ebs_csi_driver,
        "eks-pod-identity-agent": versions.pod_identity_agent,
    }
    assert json.loads(addons["vpc-cni"].inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    # CNI first, nodes next, then what needs nodes to schedule.
    node_groups = under(record, _cluster(record), "aws:eks/nodeGroup:NodeGroup")
    assert len(node_groups) == 2
    for ng in node_groups:
        assert ng.urn in addons["coredns"].dependencies
        assert ng.urn in addons["aws-ebs-csi-driver"].dependencies
        assert addons["vpc-cni"].urn in ng.dependencies
        assert addons["kube-proxy"].urn in ng.dependencies


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_oidc_provider_and_ebs_csi_irsa_role(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    eks = _eks(record)
    issuer = eks.outputs["identities"][0]["oidcs"][0]["issuer"]
    (oidc,) = under(record, _cluster(record), "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"] == issuer
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert record.outputs["oidcProviderArn"] == oidc.outputs["arn"]

    addons = {a.inputs["addonName"]: a for a in under(record, _cluster(record), ADDON)}
    roles = {r.outputs["arn"]: r for r in under(record, _cluster(record), ROLE)}
    ebs_role = roles[addons["aws-ebs-csi-driver"].inputs["serviceAccountRoleArn"]]
    (trust,) = statements(policy(ebs_role, "assumeRolePolicy"))
    host = issuer.removeprefix("https://")
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Principal"] == {"Federated": oidc.outputs["arn"]}
    assert trust["Condition"]["StringEquals"] == {
        f"{host}:sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        f"{host}:aud": "sts.amazonaws.com",
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_iam_least_privilege(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    root = _cluster(record)
    attachments = under(record, root, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    node_role = next(r for r in under(record, root, ROLE) if r.inputs["name"].endswith("-node"))
    node_policies = {a.inputs["policyArn"] for a in attachments if a.inputs["role"] == node_role.inputs["name"]}
    assert node_policies == {f"arn:aws:iam::aws:policy/{p}" for p in NODE_MANAGED_POLICIES}
    # Every custom policy is scoped to the project's own key ARNs: no wildcard resources, no wildcard actions.
    project_keys = {key_arn(record, p) for p in ("eks", "ebs")}
    inline = under(record, root, "aws:iam/rolePolicy:RolePolicy")
    assert inline, "expected the KMS policies of the cluster and EBS CSI roles"
    for rp in inline:
        for st in statements(policy(rp)):
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            assert set(resources) <= project_keys, rp.name
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert all(a.startswith("kms:") and a != "kms:*" for a in actions), rp.name


@pytest.mark.parametrize("stack", STACKS)
def test_default_storage_class_is_encrypted_gp3(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    root = _cluster(record)
    (sc,) = under(record, root, "kubernetes:storage.k8s.io/v1:StorageClass")
    (provider,) = under(record, root, "pulumi:providers:kubernetes")
    assert sc.inputs["metadata"]["name"] == STORAGE_CLASS_NAME
    assert sc.inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc.inputs["provisioner"] == "ebs.csi.aws.com"
    assert sc.inputs["parameters"]["type"] == "gp3"
    assert sc.inputs["parameters"]["encrypted"] == "true"
    assert sc.inputs["parameters"]["kmsKeyId"] == key_arn(record, "ebs")
    assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc.inputs["allowVolumeExpansion"] is True
    assert sc.provider is not None and sc.provider.startswith(provider.urn)
    # The kubeconfig never appears in plain text: not in the provider's inputs, not in the stack outputs.
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert record.outputs["kubeconfig"] == "[secret]"


def test_kubeconfig_uses_short_lived_exec_tokens() -> None:
    from infra.cluster import _kubeconfig

    kc = json.loads(_kubeconfig("c1", "https://x.eks.amazonaws.com", "Q0E=", "eu-west-1"))
    user = kc["users"][0]["user"]
    assert "token" not in user and "client-key-data" not in user
    assert user["exec"]["command"] == "aws"
    assert user["exec"]["args"] == [
        "eks",
        "get-token",
        "--cluster-name",
        "c1",
        "--region",
        "eu-west-1",
        "--output",
        "json",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_aws_enum_values_are_real(records: dict[str, Record], stack: str) -> None:
    report = check_aws_values(records[stack])
    mine = [e for e in report.errors if "::cluster" in e["urn"] or "Cluster$" in e["urn"]]
    assert not mine, mine
    assert report.checked > 0


# ---- refusals: a config that weakens a guarantee never reaches a resource ----------------------------------
@pytest.mark.parametrize(
    ("override", "key", "needle"),
    [
        ({"publicAccessCidrs": ["0.0.0.0/0"]}, "cluster.publicAccessCidrs", "0.0.0.0/0"),
        ({"publicAccessCidrs": ["::/0"]}, "cluster.publicAccessCidrs", "::/0"),
        ({"publicAccessCidrs": []}, "cluster", "publicAccessCidrs"),
        ({"gpuNodes": {"instanceTypes": ["m5.large"]}}, "cluster.gpuNodes.instanceTypes", "m5.large"),
        ({"gpuNodes": {"minSize": 3, "maxSize": 1, "desiredSize": 1}}, "cluster.gpuNodes", "minSize (3)"),
        ({"kubernetesVersion": "1.20"}, "cluster.kubernetesVersion", "1.20"),
        ({"kubernetesVersion": "1.34"}, "cluster.addons.kubeProxy", "v1.33.0-eksbuild.2"),
        ({"addons": {"coredns": "latest"}}, "cluster.addons.coredns", "latest"),
        ({"adminRoleArns": ["arn:aws:iam::123456789012:user/alice"]}, "cluster.adminRoleArns", "user/alice"),
    ],
)
def test_weakening_config_is_refused(override: dict[str, Any], key: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        run_stack("dev", overrides={"visionrag:cluster": override})
    assert any(k == key and needle in msg for k, msg in err.value.problems), err.value.problems


def test_public_endpoint_refused_outside_dev() -> None:
    with pytest.raises(ConfigError, match="endpointPublicAccess"):
        run_stack(
            "prod",
            overrides={"visionrag:cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}},
        )


# ---- the component refuses the same things on its own (it never sees the config layer) ----------------------
def _args(**changes: Any) -> ClusterArgs:
    base = ClusterArgs(
        cluster_name="visionrag-test",
        kubernetes_version="1.33",
        region="us-east-1",
        private_subnet_ids=["subnet-a", "subnet-b"],
        control_plane_subnet_ids=["subnet-c", "subnet-d"],
        vpc_id="vpc-1",
        endpoint_public_access=False,
        public_access_cidrs=[],
        eks_key_arn="arn:aws:kms:us-east-1:123456789012:key/eks",
        ebs_key_arn="arn:aws:kms:us-east-1:123456789012:key/ebs",
        logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs",
        log_retention_days=30,
        admin_role_arns=[],
        deployer_role_arn="arn:aws:iam::123456789012:role/deployer",
        addons=AddonVersions(
            vpc_cni="v1.20.0-eksbuild.1",
            coredns="v1.12.1-eksbuild.2",
            kube_proxy="v1.33.0-eksbuild.2",
            ebs_csi_driver="v1.45.0-eksbuild.2",
            pod_identity_agent="v1.3.7-eksbuild.2",
        ),
        system_nodes=NodePool(instance_types=["m6i.large"], min_size=2, max_size=3),
        gpu_nodes=NodePool(instance_types=["g5.xlarge"], min_size=0, max_size=1, ami_type="AL2023_x86_64_NVIDIA"),
        deletion_protection=False,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"endpoint_public_access": True, "public_access_cidrs": ["0.0.0.0/0"]}, "public_access_cidrs"),
        ({"endpoint_public_access": True, "public_access_cidrs": ["10.0.0.0/8", "::/0"]}, "public_access_cidrs"),
        ({"endpoint_public_access": True, "public_access_cidrs": []}, "public_access_cidrs"),
        ({"public_access_cidrs": ["203.0.113.0/24"]}, "public_access_cidrs"),
        ({"log_retention_days": 42}, "log_retention_days"),
        ({"admin_role_arns": ["arn:aws:iam::123456789012:user/alice"]}, "admin_role_arns"),
        ({"viewer_role_arns": ["arn:aws:iam::123456789012:user/preview"]}, "viewer_role_arns"),
        ({"viewer_role_arns": ["arn:aws:iam::123456789012:role/deployer"]}, "viewer_role_arns"),
        ({"private_subnet_ids": ["subnet-a"]}, "private_subnet_ids"),
        ({"control_plane_subnet_ids": ["subnet-c"]}, "control_plane_subnet_ids"),
        ({"kubernetes_version": "1.34"}, "addons.kube_proxy"),
    ],
)
def test_args_refuse_weak_settings(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Cluster("c", _args(**changes))


def test_tier_table_for_the_platform(records: dict[str, Record]) -> None:
    """ARCHITECTURE.md's tier table, for this layer: what differs between dev and prod, and only that."""

    def facts(record: Record) -> dict[str, Any]:
        eks = _eks(record).inputs
        gpu = next(r for r in record.of_type("aws:eks/nodeGroup:NodeGroup") if r.name == "cluster-gpu-ng")
        alb = next(iter(record.of_type("aws:lb/loadBalancer:LoadBalancer"))).inputs
        rg = next(iter(record.of_type("aws:elasticache/replicationGroup:ReplicationGroup"))).inputs
        return {
            "public endpoint": eks["vpcConfig"]["endpointPublicAccess"],
            "gpu min": gpu.inputs["scalingConfig"]["minSize"],
            "eks deletion protection": eks["deletionProtection"],
            "alb deletion protection": alb["enableDeletionProtection"],
            "cache multi-az": rg["multiAzEnabled"],
            "cache nodes": rg["numCacheClusters"],
            "tls policy": next(
                r.inputs["sslPolicy"] for r in record.of_type("aws:lb/listener:Listener") if r.inputs["port"] == 443
            ),
            "imds tokens": {
                r.inputs["metadataOptions"]["httpTokens"]
                for r in record.of_type("aws:ec2/launchTemplate:LaunchTemplate")
            },
        }

    dev, prod = facts(records["dev"]), facts(records["prod"])
    assert {k: (dev[k], prod[k]) for k in dev if dev[k] != prod[k]} == {
        "public endpoint": (True, False),
        "gpu min": (0, 1),
        "eks deletion protection": (False, True),
        "alb deletion protection": (False, True),
        "cache multi-az": (False, True),
        "cache nodes": (1, 2),
    }
