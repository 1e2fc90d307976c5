"""The pack against the real program: every stack passes, and the real prod plan weakened one property at a
time trips the right policy at the right level.

Plans come from the shared session records (tests/conftest.py: the real program under the offline engine).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.registry import lifecycle_policy
from policies.check import main as check_main
from policies.evaluator import evaluate, evaluate_plan, stack_pack_config

Plan = dict[str, Any]
STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def real_plans(records) -> dict[str, Plan]:
    return {s: records[s].to_plan() for s in STACKS}


@pytest.fixture
def prod(real_plans) -> Plan:
    return copy.deepcopy(real_plans["prod"])


@pytest.mark.parametrize("stack", STACKS)
def test_real_stack_has_no_mandatory_violation(stack: str, real_plans) -> None:
    result = evaluate(real_plans[stack], stack_pack_config(stack))
    assert result.mandatory == [], "\n".join(f"{v.policy}: {v.message} ({v.urn})" for v in result.mandatory)
    # Nothing is left unjudged for lack of a value: the offline engine knows every input.
    assert [v for v in result.violations if v.message.startswith("cannot check")] == []


def test_saved_real_plan_round_trips_through_the_cli(real_plans, tmp_path) -> None:
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(real_plans["prod"]))
    assert check_main([str(path), "--config", "policies/config/prod.json", "--format", "json"]) == 0


# ---- mutations of the real prod plan ---------------------------------------------------------------------
def _pick(plan: Plan, type_: str, where: Callable[[dict[str, Any]], bool] = lambda r: True) -> dict[str, Any]:
    hits = [r for r in plan["resources"] if r["type"] == type_ and where(r)]
    if not hits:
        # A mutation with nothing to mutate would prove nothing: fail rather than skip.
        raise AssertionError(f"the real prod plan has no {type_} matching the mutation")
    return hits[0]


def _named(fragment: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: fragment in r["name"] or fragment in json.dumps(r["inputs"].get("bucket", ""))


def _bucket_sibling(plan: Plan, type_: str, bucket: str) -> dict[str, Any]:
    return _pick(plan, type_, lambda r: r["inputs"].get("bucket") == bucket)


PAGES = "visionrag-prod-123456789012-us-east-1-pages"  # <prefix>-<tier>-<account>-<region>-<purpose>


def _public_policy(plan: Plan) -> None:
    res = _bucket_sibling(plan, "aws:s3/bucketPolicy:BucketPolicy", PAGES)
    doc = json.loads(res["inputs"]["policy"])
    doc["Statement"].append(
        {
            "Sid": "Oops",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{PAGES}/*",
        }
    )
    res["inputs"]["policy"] = json.dumps(doc)


def _drop_tls_deny(plan: Plan) -> None:
    res = _bucket_sibling(plan, "aws:s3/bucketPolicy:BucketPolicy", PAGES)
    doc = json.loads(res["inputs"]["policy"])
    doc["Statement"] = [s for s in doc["Statement"] if "aws:SecureTransport" not in json.dumps(s)]
    res["inputs"]["policy"] = json.dumps(doc)


def _remove(plan: Plan, res: dict[str, Any]) -> None:
    plan["resources"].remove(res)


def _container(plan: Plan, kind: str = "kubernetes:apps/v1:Deployment", name: str = "") -> dict[str, Any]:
    res = _pick(plan, kind, lambda r: name in r["name"])
    return res["inputs"]["spec"]["template"]["spec"]["containers"][0]


def _gpu_pod(plan: Plan) -> dict[str, Any]:
    def wants_gpu(r: dict[str, Any]) -> bool:
        return "nvidia.com/gpu" in json.dumps(r["inputs"].get("spec", {}).get("template", {}))

    return _pick(plan, "kubernetes:apps/v1:Deployment", wants_gpu)["inputs"]["spec"]["template"]["spec"]


def _open_nodes_to_world(plan: Plan) -> None:
    sg = _pick(plan, "aws:ec2/securityGroup:SecurityGroup", lambda r: "node" in r["name"])
    plan["resources"].append(
        {
            "urn": sg["urn"].replace(
                "aws:ec2/securityGroup:SecurityGroup::", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::"
            )
            + "-ssh",
            "type": "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "name": "nodes-ssh",
            "parent": sg["parent"],
            "dependencies": [sg["urn"]],
            "custom": True,
            "provider": sg.get("provider"),
            "inputs": {
                "securityGroupId": sg["outputs"]["id"],
                "cidrIpv4": "0.0.0.0/0",
                "fromPort": 22.0,
                "toPort": 22.0,
                "ipProtocol": "tcp",
            },
            "outputs": {},
        }
    )


def _drop_tls_version_floor(plan: Plan) -> None:
    res = _bucket_sibling(plan, "aws:s3/bucketPolicy:BucketPolicy", PAGES)
    doc = json.loads(res["inputs"]["policy"])
    doc["Statement"] = [s for s in doc["Statement"] if "s3:TlsVersion" not in json.dumps(s)]
    res["inputs"]["policy"] = json.dumps(doc)


def _iam_wildcard(plan: Plan) -> None:
    res = _pick(plan, "aws:iam/rolePolicy:RolePolicy")
    doc = json.loads(res["inputs"]["policy"])
    doc["Statement"].append({"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"})
    res["inputs"]["policy"] = json.dumps(doc)


def _irsa_without_sub(plan: Plan) -> None:
    res = _pick(plan, "aws:iam/role:Role", lambda r: "AssumeRoleWithWebIdentity" in r["inputs"]["assumeRolePolicy"])
    doc = json.loads(res["inputs"]["assumeRolePolicy"])
    for st in doc["Statement"]:
        for block in (st.get("Condition") or {}).values():
            for key in [k for k in block if k.endswith(":sub")]:
                del block[key]
    res["inputs"]["assumeRolePolicy"] = json.dumps(doc)


NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GPU_NG: Callable[[dict[str, Any]], bool] = lambda r: "NVIDIA" in str(r["inputs"].get("amiType"))  # noqa: E731
SYSTEM_NG: Callable[[dict[str, Any]], bool] = lambda r: "NVIDIA" not in str(r["inputs"].get("amiType"))  # noqa: E731


def _foreign_repository(p: Plan) -> None:
    """A repository (and its lifecycle) as the registry owner declares it, added to a stack that is not the owner."""
    repo_urn = "urn:pulumi:prod::visionrag::aws:ecr/repository:Repository::registry-api"
    repo = {
        "name": "visionrag-api",
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:1:key/k"}],
    }
    lifecycle = {"repository": "visionrag-api", "policy": lifecycle_policy({"dev": 1, "staging": 1, "prod": 1}, 1, 1)}
    for urn, type_, inputs, deps in (
        (repo_urn, "aws:ecr/repository:Repository", repo, []),
        (f"{repo_urn}-lifecycle", "aws:ecr/lifecyclePolicy:LifecyclePolicy", lifecycle, [repo_urn]),
    ):
        p["resources"].append(
            {
                "urn": urn,
                "type": type_,
                "name": urn.rsplit("::", 1)[1],
                "parent": None,
                "dependencies": deps,
                "inputs": inputs,
                "outputs": {"id": "visionrag-api", "name": "visionrag-api"},
                "custom": True,
                "provider": None,
            }
        )


MUTATIONS: list[tuple[str, str, Callable[[Plan], None]]] = [
    (
        "public bucket",
        "s3-public-access-block",
        lambda p: _bucket_sibling(p, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", PAGES)["inputs"].update(
            blockPublicPolicy=False, restrictPublicBuckets=False
        ),
    ),
    ("public bucket policy", "s3-no-public-policy", _public_policy),
    (
        "drop SSE",
        "s3-sse-kms",
        lambda p: _remove(
            p,
            _bucket_sibling(
                p, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", PAGES
            ),
        ),
    ),
    (
        "versioning suspended",
        "s3-versioning",
        lambda p: _bucket_sibling(p, "aws:s3/bucketVersioning:BucketVersioning", PAGES)["inputs"].update(
            versioningConfiguration={"status": "Suspended"}
        ),
    ),
    ("TLS deny removed", "s3-tls-only", _drop_tls_deny),
    (
        "access logs off",
        "s3-access-logging",
        lambda p: _remove(p, _bucket_sibling(p, "aws:s3/bucketLogging:BucketLogging", PAGES)),
    ),
    (
        "replication dropped",
        "s3-replication",
        lambda p: _remove(p, _bucket_sibling(p, "aws:s3/bucketReplicationConfig:BucketReplicationConfig", PAGES)),
    ),
    (
        "audit lock governance",
        "s3-object-lock",
        lambda p: _pick(p, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")["inputs"]["rule"][
            "defaultRetention"
        ].update(mode="GOVERNANCE"),
    ),
    (
        "key rotation off",
        "kms-key-rotation",
        lambda p: _pick(p, "aws:kms/key:Key")["inputs"].update(enableKeyRotation=False),
    ),
    (
        "public EKS endpoint 0.0.0.0/0",
        "eks-endpoint-private",
        lambda p: _pick(p, "aws:eks/cluster:Cluster")["inputs"]["vpcConfig"].update(
            endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]
        ),
    ),
    (
        "no secrets encryption",
        "eks-secrets-encryption",
        lambda p: _pick(p, "aws:eks/cluster:Cluster")["inputs"].pop("encryptionConfig"),
    ),
    (
        "no audit log",
        "eks-control-plane-logs",
        lambda p: _pick(p, "aws:eks/cluster:Cluster")["inputs"].update(enabledClusterLogTypes=["api"]),
    ),
    (
        "IMDSv1 allowed",
        "launch-template-imdsv2",
        lambda p: _pick(p, "aws:ec2/launchTemplate:LaunchTemplate")["inputs"]["metadataOptions"].update(
            httpTokens="optional"
        ),
    ),
    (
        "IMDS hop limit 2",
        "launch-template-imdsv2",
        lambda p: _pick(p, "aws:ec2/launchTemplate:LaunchTemplate")["inputs"]["metadataOptions"].update(
            httpPutResponseHopLimit=2.0
        ),
    ),
    (
        "unencrypted node volume",
        "launch-template-encrypted-volumes",
        lambda p: _pick(p, "aws:ec2/launchTemplate:LaunchTemplate")["inputs"]["blockDeviceMappings"][0]["ebs"].update(
            encrypted="false"
        ),
    ),
    ("GPU taint removed", "eks-gpu-node-group", lambda p: _pick(p, NODE_GROUP, GPU_NG)["inputs"].update(taints=[])),
    (
        "GPU max over ceiling",
        "cost-gpu-ceiling",
        lambda p: _pick(p, NODE_GROUP, GPU_NG)["inputs"]["scalingConfig"].update(maxSize=12.0),
    ),
    (
        "budget overrun",
        "cost-monthly-budget",
        lambda p: _pick(p, NODE_GROUP, SYSTEM_NG)["inputs"]["scalingConfig"].update(desiredSize=120.0, maxSize=120.0),
    ),
    (
        "old TLS policy",
        "alb-listener-tls",
        lambda p: _pick(p, "aws:lb/listener:Listener", lambda r: r["inputs"].get("protocol") == "HTTPS")[
            "inputs"
        ].update(sslPolicy="ELBSecurityPolicy-2016-08"),
    ),
    (
        "HTTP listener forwards",
        "alb-listener-tls",
        lambda p: _pick(p, "aws:lb/listener:Listener", lambda r: r["inputs"].get("protocol") == "HTTP")[
            "inputs"
        ].update(defaultActions=[{"type": "forward", "targetGroupArn": "arn:tg"}]),
    ),
    ("WAF unassociated", "alb-waf", lambda p: _remove(p, _pick(p, "aws:wafv2/webAclAssociation:WebAclAssociation"))),
    (
        "ALB deletion protection off",
        "alb-deletion-protection",
        lambda p: _pick(p, "aws:lb/loadBalancer:LoadBalancer")["inputs"].update(enableDeletionProtection=False),
    ),
    (
        "ALB access logs off",
        "alb-access-logs",
        lambda p: _pick(p, "aws:lb/loadBalancer:LoadBalancer")["inputs"]["accessLogs"].update(enabled=False),
    ),
    ("SSH open to the world", "sg-no-public-ingress", _open_nodes_to_world),
    ("flow log removed", "vpc-flow-logs", lambda p: _remove(p, _pick(p, "aws:ec2/flowLog:FlowLog"))),
    (
        "ECR repository in a stack that does not own the registry",
        "ecr-registry-owner",
        _foreign_repository,
    ),
    (
        "secret on AWS key",
        "secretsmanager-cmk",
        lambda p: _pick(p, "aws:secretsmanager/secret:Secret")["inputs"].pop("kmsKeyId"),
    ),
    (
        "plaintext secret",
        "no-plaintext-secrets",
        lambda p: _pick(p, "aws:secretsmanager/secretVersion:SecretVersion")["inputs"].update(secretString="hunter22"),
    ),
    (
        "cache in clear",
        "elasticache-encryption",
        lambda p: _pick(p, "aws:elasticache/replicationGroup:ReplicationGroup")["inputs"].update(
            transitEncryptionEnabled=False
        ),
    ),
    (
        "log group unencrypted",
        "log-group-encrypted-retained",
        lambda p: _pick(p, "aws:cloudwatch/logGroup:LogGroup")["inputs"].pop("kmsKeyId"),
    ),
    ("old TLS allowed on a bucket", "s3-tls-only", _drop_tls_version_floor),
    ("IAM wildcard", "iam-no-wildcard-admin", _iam_wildcard),
    ("IRSA trust without sub", "iam-trust-scoped", _irsa_without_sub),
    (
        "creator keeps admin",
        "eks-access-entries",
        lambda p: _pick(p, "aws:eks/cluster:Cluster")["inputs"]["accessConfig"].update(
            bootstrapClusterCreatorAdminPermissions=True
        ),
    ),
    (
        "network policies not enforced",
        "eks-network-policy-enforced",
        lambda p: _pick(p, "aws:eks/addon:Addon", lambda r: r["inputs"].get("addonName") == "vpc-cni")["inputs"].update(
            configurationValues="{}"
        ),
    ),
    ("liveness probe removed", "k8s-probes", lambda p: _container(p).pop("livenessProbe")),
    (
        "device plugin misses the GPU taint",
        "gpu-device-plugin",
        lambda p: _pick(
            p, "kubernetes:helm.sh/v3:Release", lambda r: r["inputs"].get("chart") == "nvidia-device-plugin"
        )["inputs"]["values"].update(tolerations=[]),
    ),
    # Kubernetes workloads (skipped with a reason until the workloads are composed into the program).
    (
        "container limit dropped",
        "k8s-container-resources",
        lambda p: _container(p)["resources"]["limits"].pop("memory"),
    ),
    (":latest image", "k8s-image-pinning", lambda p: _container(p).update(image="visionrag/api:latest")),
    ("GPU toleration removed", "k8s-gpu-scheduling", lambda p: _gpu_pod(p).pop("tolerations")),
    (
        "runs as root",
        "k8s-container-security-context",
        lambda p: _container(p)["securityContext"].update(runAsNonRoot=False),
    ),
    (
        "LoadBalancer service",
        "k8s-no-external-service",
        lambda p: _pick(p, "kubernetes:core/v1:Service")["inputs"]["spec"].update(type="LoadBalancer"),
    ),
    (
        "default-deny removed",
        "k8s-default-deny-network-policy",
        lambda p: _remove(
            p,
            _pick(
                p,
                "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                lambda r: r["inputs"].get("spec", {}).get("podSelector") in ({}, None),
            ),
        ),
    ),
]


@pytest.mark.parametrize(("label", "policy", "mutate"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_weakened_real_prod_plan_trips_the_right_policy(label: str, policy: str, mutate, prod: Plan) -> None:
    mutate(prod)
    violations = evaluate_plan(prod, stack_pack_config("prod"))
    fired = {(v.policy, v.level) for v in violations}
    assert (policy, "mandatory") in fired, f"{label}: {policy} did not fire; got {violations}"
    assert {p for p, _ in fired} == {policy}, f"{label}: expected only {policy}, got {sorted(fired)}"


# ---- the tiers differ where the pack config says so --------------------------------------------------------
def _eks_world(p: Plan) -> None:
    vpc = _pick(p, "aws:eks/cluster:Cluster")["inputs"]["vpcConfig"]
    vpc.update(endpointPublicAccess=True, publicAccessCidrs=[*vpc.get("publicAccessCidrs", []), "0.0.0.0/0"])


def _tagged_image(p: Plan) -> None:
    image = _container(p)["image"]
    _container(p).update(image=image.split("@", 1)[0].rsplit(":", 1)[0] + ":1.2.3")


TIER_CASES: list[tuple[str, str, Callable[[Plan], None], str | None]] = [
    ("dev", "EKS endpoint open to the world", _eks_world, "eks-endpoint-private"),
    (
        "dev",
        "ALB deletion protection off",
        lambda p: _pick(p, "aws:lb/loadBalancer:LoadBalancer")["inputs"].update(enableDeletionProtection=False),
        None,
    ),
    ("dev", "image by tag", _tagged_image, None),
    # The registry owner (dev) holds the repositories: their properties are judged there.
    (
        "dev",
        "mutable ECR tags",
        lambda p: _pick(p, "aws:ecr/repository:Repository")["inputs"].update(imageTagMutability="MUTABLE"),
        "ecr-immutable-tags",
    ),
    ("staging", "image by tag", _tagged_image, "k8s-image-pinning"),
    (
        "staging",
        "ALB deletion protection off",
        lambda p: _pick(p, "aws:lb/loadBalancer:LoadBalancer")["inputs"].update(enableDeletionProtection=False),
        "alb-deletion-protection",
    ),
]


@pytest.mark.parametrize(
    ("stack", "label", "mutate", "policy"), TIER_CASES, ids=[f"{c[0]}: {c[1]}" for c in TIER_CASES]
)
def test_tier_specific_verdicts_on_real_plans(stack: str, label: str, mutate, policy: str | None, real_plans) -> None:
    plan = copy.deepcopy(real_plans[stack])
    mutate(plan)
    fired = {(v.policy, v.level) for v in evaluate_plan(plan, stack_pack_config(stack))}
    assert fired == ({(policy, "mandatory")} if policy else set()), f"{stack} {label}: {fired}"
