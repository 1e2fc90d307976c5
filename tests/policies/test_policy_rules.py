"""Every policy: a fixture it must flag and fixtures it must pass.

Each flag case breaks ONE property of the compliant prod-like plan and asserts that exactly the expected policy
fires (at the level the stack's pack config gives it) — so a rule that fires too broadly fails here too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra.registry import lifecycle_policy
from policies.rules import ALL_POLICIES
from tests.policies.policy_plans import REGION, find, find_all

Plan = dict[str, Any]

BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _drop(plan: Plan, type_: str, name: str | None = None) -> None:
    victim = find(plan, type_, name)
    plan["resources"].remove(victim)


def _inputs(plan: Plan, type_: str, name: str | None = None) -> dict[str, Any]:
    return find(plan, type_, name)["inputs"]


def _container(plan: Plan, name: str, kind: str = DEPLOYMENT) -> dict[str, Any]:
    return _inputs(plan, kind, name)["spec"]["template"]["spec"]["containers"][0]


def _pod(plan: Plan, name: str, kind: str = DEPLOYMENT) -> dict[str, Any]:
    return _inputs(plan, kind, name)["spec"]["template"]["spec"]


def _bucket_policy(plan: Plan, bucket: str) -> dict[str, Any]:
    return json.loads(_inputs(plan, POLICY, f"{bucket}-policy")["policy"])


def _set_bucket_policy(plan: Plan, bucket: str, doc: dict[str, Any]) -> None:
    _inputs(plan, POLICY, f"{bucket}-policy")["policy"] = json.dumps(doc)


def _add(plan: Plan, type_: str, name: str, inputs: dict[str, Any], deps: list[str]) -> None:
    plan["resources"].append(
        {
            "urn": f"urn:pulumi:prod::visionrag::{type_}::{name}",
            "type": type_,
            "name": name,
            "parent": None,
            "dependencies": deps,
            "inputs": inputs,
            "outputs": {},
            "custom": True,
            "provider": None,
        }
    )


def _public_read(plan: Plan) -> None:
    doc = _bucket_policy(plan, "-pages")
    doc["Statement"].append(
        {
            "Sid": "Public",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::visionrag-prod-pages/*",
        }
    )
    _set_bucket_policy(plan, "-pages", doc)


def _vpce_read(plan: Plan) -> None:
    doc = _bucket_policy(plan, "-pages")
    doc["Statement"].append(
        {
            "Sid": "Vpce",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::visionrag-prod-pages/*",
            "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1234"}},
        }
    )
    _set_bucket_policy(plan, "-pages", doc)


def _no_tls_statement(plan: Plan) -> None:
    doc = _bucket_policy(plan, "-pages")
    doc["Statement"] = [s for s in doc["Statement"] if s["Sid"] != "DenyInsecureTransport"]
    _set_bucket_policy(plan, "-pages", doc)


def _public_acl(plan: Plan) -> None:
    bucket = find(plan, BUCKET, "-pages")
    _add(
        plan,
        "aws:s3/bucketAcl:BucketAcl",
        "pages-acl",
        {"bucket": "visionrag-prod-pages", "acl": "public-read"},
        [bucket["urn"]],
    )


def _all_users_grant(plan: Plan) -> None:
    bucket = find(plan, BUCKET, "-models")
    grant = {
        "grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
        "permission": "READ",
    }
    _add(
        plan,
        "aws:s3/bucketAcl:BucketAcl",
        "models-acl",
        {"bucket": "visionrag-prod-models", "accessControlPolicy": {"grants": [grant], "owner": {"id": "x"}}},
        [bucket["urn"]],
    )


def _sse(plan: Plan, bucket: str = "-pages") -> dict[str, Any]:
    return _inputs(plan, SSE, f"{bucket}-sse")["rules"][0]


def _ingress(plan: Plan, name: str, sg: str, cidr: str, port: float, proto: str = "tcp") -> None:
    sg_res = find(plan, "aws:ec2/securityGroup:SecurityGroup", sg)
    _add(
        plan,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        name,
        {
            "securityGroupId": sg_res["inputs"]["name"],
            "cidrIpv4": cidr,
            "fromPort": port,
            "toPort": port,
            "ipProtocol": proto,
        },
        [sg_res["urn"]],
    )


def _node_groups_on_public_subnets(plan: Plan) -> None:
    ng = find(plan, "aws:eks/nodeGroup:NodeGroup", "-system")
    public = [r for r in find_all(plan, "aws:ec2/subnet:Subnet") if "public" in r["name"]]
    ng["inputs"]["subnetIds"] = [r["name"] for r in public]
    ng["dependencies"] = [d for d in ng["dependencies"] if "private" not in d] + [r["urn"] for r in public]


def _userdata_key(plan: Plan) -> None:
    script = "#!/bin/bash\nexport AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP\n"
    _inputs(plan, "aws:ec2/launchTemplate:LaunchTemplate", "-system")["userData"] = base64.b64encode(
        script.encode()
    ).decode()


def _k8s_secret_plain(plan: Plan) -> None:
    _add(
        plan,
        "kubernetes:core/v1:Secret",
        "db",
        {"metadata": {"name": "db", "namespace": "visionrag"}, "stringData": {"password": "hunter2-but-longer"}},
        [],
    )


def _default_deny_ingress_only(plan: Plan) -> None:
    spec = _inputs(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "default-deny")["spec"]
    spec["policyTypes"] = ["Ingress"]


def _budget_overrun(plan: Plan) -> None:
    _inputs(plan, "aws:eks/nodeGroup:NodeGroup", "-system")["scalingConfig"].update(
        {"desiredSize": 100.0, "maxSize": 100.0}
    )


def _no_tls_version_floor(plan: Plan) -> None:
    doc = _bucket_policy(plan, "-snapshots")
    doc["Statement"] = [s for s in doc["Statement"] if s["Sid"] != "DenyOldTls"]
    _set_bucket_policy(plan, "-snapshots", doc)


def _role_policy(plan: Plan) -> dict[str, Any]:
    return _inputs(plan, "aws:iam/rolePolicy:RolePolicy", "-api")


def _wildcard_policy(plan: Plan) -> None:
    doc = json.loads(_role_policy(plan)["policy"])
    doc["Statement"].append({"Sid": "Lazy", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    _role_policy(plan)["policy"] = json.dumps(doc)


def _admin_attachment(plan: Plan) -> None:
    _add(
        plan,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "admin",
        {"role": "visionrag-prod-api", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        [],
    )


def _trust_doc(plan: Plan) -> dict[str, Any]:
    return json.loads(_inputs(plan, "aws:iam/role:Role", "-api")["assumeRolePolicy"])


def _irsa_without_sub(plan: Plan) -> None:
    doc = _trust_doc(plan)
    cond = doc["Statement"][0]["Condition"]["StringEquals"]
    for k in [k for k in cond if k.endswith(":sub")]:
        del cond[k]
    _inputs(plan, "aws:iam/role:Role", "-api")["assumeRolePolicy"] = json.dumps(doc)


def _trust_anyone(plan: Plan) -> None:
    doc = _trust_doc(plan)
    doc["Statement"].append({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "*"}})
    _inputs(plan, "aws:iam/role:Role", "-api")["assumeRolePolicy"] = json.dumps(doc)


def _unwire_scanner(plan: Plan) -> None:
    """The broken version: clamd runs, but the api has no CLAMD_HOST and stores uploads unscanned."""
    env = _container(plan, "api")["env"]
    env[:] = [e for e in env if not e["name"].startswith("CLAMD_")]


@dataclass(frozen=True)
class Case:
    policy: str
    id: str
    mutate: Callable[[Plan], None]
    stack: str = "prod"
    level: str = "mandatory"


def setter(type_: str, name: str | None, path: tuple[str | int, ...], value: Any) -> Callable[[Plan], None]:
    def mutate(plan: Plan) -> None:
        cur: Any = _inputs(plan, type_, name)
        for key in path[:-1]:
            cur = cur[key]
        if value is _DELETE:
            del cur[path[-1]]
        else:
            cur[path[-1]] = value

    return mutate


_DELETE = object()
HELM = "kubernetes:helm.sh/v3:Release"
CIP = "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy"
_KEY_POLICY_NAMING_AUTOSCALING = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AutoScalingUsesTheKey",
                "Effect": "Allow",
                "Principal": {
                    "AWS": "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/"
                    "AWSServiceRoleForAutoScaling"
                },
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:CreateGrant"],
                "Resource": "*",
            }
        ],
    }
)
LT = "aws:ec2/launchTemplate:LaunchTemplate"
NG = "aws:eks/nodeGroup:NodeGroup"
EKS = "aws:eks/cluster:Cluster"
LISTENER = "aws:lb/listener:Listener"
ALB = "aws:lb/loadBalancer:LoadBalancer"
ECR = "aws:ecr/repository:Repository"


def _ecr_repository_in_prod(plan: Plan) -> None:
    # A repository that is compliant in every other way, with its lifecycle: only the ownership is wrong.
    repo = {
        "name": "visionrag-api",
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/r"}],
    }
    _add(plan, ECR, "visionrag-api", repo, [])
    lifecycle = {"repository": "visionrag-api", "policy": lifecycle_policy({"dev": 1, "staging": 1, "prod": 1}, 1, 1)}
    urn = find(plan, ECR, "visionrag-api")["urn"]
    _add(plan, "aws:ecr/lifecyclePolicy:LifecyclePolicy", "visionrag-api-lifecycle", lifecycle, [urn])


def _ecr_pull_principal(plan: Plan, principal: Any) -> None:
    pull = _inputs(plan, "aws:ecr/repositoryPolicy:RepositoryPolicy", "visionrag-api-pull")
    doc = json.loads(pull["policy"])
    doc["Statement"][0]["Principal"] = principal
    pull["policy"] = json.dumps(doc)


# The policy the registry had before the release-aware lifecycle: "keep the newest 30 images, any tag".
_OLD_LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
                "action": {"type": "expire"},
            },
        ]
    }
)


def _ecr_catch_all_lifecycle(plan: Plan) -> None:
    _inputs(plan, "aws:ecr/lifecyclePolicy:LifecyclePolicy", "visionrag-worker")["policy"] = _OLD_LIFECYCLE


CDN = "aws:cloudfront/distribution:Distribution"
CDN_HEADERS = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"

FLAG_CASES = [
    Case("s3-public-access-block", "flag-off", setter(PAB, "-pages-pab", ("blockPublicPolicy",), False)),
    Case("s3-public-access-block", "missing", lambda p: _drop(p, PAB, "-audit-pab")),
    Case("s3-no-public-acl", "canned-acl", _public_acl),
    Case("s3-no-public-acl", "all-users-grant", _all_users_grant),
    Case("s3-no-public-acl", "inline-acl", setter(BUCKET, "-models", ("acl",), "public-read-write")),
    Case(
        "s3-acls-disabled",
        "object-writer",
        setter(
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            "-pages-ownership",
            ("rule", "objectOwnership"),
            "ObjectWriter",
        ),
    ),
    Case("s3-no-public-policy", "principal-star", _public_read),
    Case(
        "s3-sse-kms", "sse-s3", lambda p: _sse(p).update(applyServerSideEncryptionByDefault={"sseAlgorithm": "AES256"})
    ),
    Case("s3-sse-kms", "dropped", lambda p: _drop(p, SSE, "-snapshots-sse")),
    Case("s3-sse-kms", "no-bucket-key", lambda p: _sse(p).update(bucketKeyEnabled=False)),
    Case(
        "s3-sse-kms",
        "aws-managed-key",
        lambda p: _sse(p)["applyServerSideEncryptionByDefault"].update(kmsMasterKeyId="alias/aws/s3"),
    ),
    Case("s3-sse-kms", "log-bucket-unencrypted", lambda p: _drop(p, SSE, "-access-logs-sse")),
    Case(
        "s3-versioning",
        "suspended",
        setter(
            "aws:s3/bucketVersioning:BucketVersioning",
            "-pages-versioning",
            ("versioningConfiguration", "status"),
            "Suspended",
        ),
    ),
    Case("s3-tls-only", "no-deny", _no_tls_statement),
    Case("s3-access-logging", "dropped", lambda p: _drop(p, "aws:s3/bucketLogging:BucketLogging", "-pages-logging")),
    Case(
        "s3-lifecycle",
        "disabled",
        lambda p: [  # type: ignore[arg-type, func-returns-value]
            r.update(status="Disabled")
            for r in _inputs(
                p, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "-models-lifecycle"
            )["rules"]
        ],
    ),
    Case(
        "s3-replication",
        "dropped",
        lambda p: _drop(p, "aws:s3/bucketReplicationConfig:BucketReplicationConfig", "-pages-replication"),
    ),
    Case("s3-storage-alarms", "size-missing", lambda p: _drop(p, ALARM, "-pages-BucketSizeBytes")),
    Case("s3-storage-alarms", "count-missing", lambda p: _drop(p, ALARM, "-audit-NumberOfObjects")),
    Case("s3-storage-alarms", "not-daily", setter(ALARM, "-models-BucketSizeBytes", ("period",), 300.0)),
    Case(
        "s3-storage-alarms",
        "wrong-storage-type",
        setter(ALARM, "-pages-NumberOfObjects", ("dimensions", "StorageType"), "StandardStorage"),
    ),
    Case("s3-storage-alarms", "nobody-told", setter(ALARM, "-models-NumberOfObjects", ("alarmActions",), [])),
    Case(
        "s3-storage-alarms",
        "replica-pages-the-primary-region",
        setter(ALARM, "-pages-replica-BucketSizeBytes", ("alarmActions",), [f"arn:aws:sns:{REGION}:1:alerts"]),
    ),
    Case("s3-object-lock", "not-enabled", setter(BUCKET, "-audit", ("objectLockEnabled",), False)),
    Case(
        "s3-object-lock",
        "governance-in-prod",
        setter(
            "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
            "-audit-lock",
            ("rule", "defaultRetention", "mode"),
            "GOVERNANCE",
        ),
    ),
    Case(
        "elasticache-encryption",
        "no-transit",
        setter("aws:elasticache/replicationGroup:ReplicationGroup", None, ("transitEncryptionEnabled",), False),
    ),
    Case("kms-key-rotation", "off", setter("aws:kms/key:Key", "-data", ("enableKeyRotation",), False)),
    Case(
        "kms-no-lockout-bypass", "bypass", setter("aws:kms/key:Key", "-eks", ("bypassPolicyLockoutSafetyCheck",), True)
    ),
    Case("kms-deletion-window", "short", setter("aws:kms/key:Key", "-logs", ("deletionWindowInDays",), 5.0)),
    Case(
        "kms-service-linked-roles-exist",
        "role-not-created",
        # The fresh-account defect: the EBS key policy names the Auto Scaling role, and nothing creates it.
        setter("aws:kms/key:Key", "-ebs", ("policy",), _KEY_POLICY_NAMING_AUTOSCALING),
    ),
    Case(
        "log-group-encrypted-retained",
        "no-key",
        setter("aws:cloudwatch/logGroup:LogGroup", "-eks-logs", ("kmsKeyId",), _DELETE),
    ),
    Case(
        "log-group-encrypted-retained",
        "forever",
        setter("aws:cloudwatch/logGroup:LogGroup", "-eks-logs", ("retentionInDays",), _DELETE),
    ),
    Case(
        "log-group-encrypted-retained",
        "below-prod-minimum",
        setter("aws:cloudwatch/logGroup:LogGroup", "-flow-logs", ("retentionInDays",), 14.0),
    ),
    Case("sg-no-public-ingress", "ssh-on-nodes", lambda p: _ingress(p, "ssh", "-nodes", "0.0.0.0/0", 22.0)),
    Case("sg-no-public-ingress", "alb-other-port", lambda p: _ingress(p, "alt", "-alb", "0.0.0.0/0", 8080.0)),
    Case(
        "sg-no-public-ingress",
        "inline-all",
        setter(
            "aws:ec2/securityGroup:SecurityGroup",
            "-nodes",
            ("ingress",),
            [{"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "ipv6CidrBlocks": ["::/0"]}],
        ),
    ),
    Case("vpc-flow-logs", "dropped", lambda p: _drop(p, "aws:ec2/flowLog:FlowLog")),
    Case("vpc-flow-logs", "reject-only", setter("aws:ec2/flowLog:FlowLog", None, ("trafficType",), "REJECT")),
    Case(
        "vpc-default-sg-closed",
        "rules",
        setter(
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
            None,
            ("ingress",),
            [{"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "self": True}],
        ),
    ),
    Case("vpc-default-sg-closed", "unmanaged", lambda p: _drop(p, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")),
    Case(
        "subnet-no-public-ip", "public-ip", setter("aws:ec2/subnet:Subnet", "-public-a", ("mapPublicIpOnLaunch",), True)
    ),
    Case(
        "eks-endpoint-private",
        "public-world",
        lambda p: _inputs(p, EKS)["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]),
    ),
    Case(
        "eks-endpoint-private", "public-by-default", lambda p: _inputs(p, EKS)["vpcConfig"].pop("endpointPublicAccess")
    ),
    Case(
        "eks-endpoint-private",
        "dev-world",
        stack="dev",
        mutate=lambda p: _inputs(p, EKS)["vpcConfig"].update(
            endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]
        ),
    ),
    Case(
        "eks-endpoint-private",
        "dev-unlisted-cidr",
        stack="dev",
        mutate=lambda p: _inputs(p, EKS)["vpcConfig"].update(
            endpointPublicAccess=True, publicAccessCidrs=["198.51.100.0/24"]
        ),
    ),
    Case("eks-secrets-encryption", "none", setter(EKS, None, ("encryptionConfig",), _DELETE)),
    Case("eks-control-plane-logs", "no-audit", setter(EKS, None, ("enabledClusterLogTypes",), ["api"])),
    Case("launch-template-imdsv2", "optional", setter(LT, "-system", ("metadataOptions", "httpTokens"), "optional")),
    Case("launch-template-imdsv2", "hop-2", setter(LT, "-gpu", ("metadataOptions", "httpPutResponseHopLimit"), 2.0)),
    Case(
        "launch-template-encrypted-volumes",
        "unencrypted",
        setter(LT, "-gpu", ("blockDeviceMappings", 0, "ebs", "encrypted"), "false"),
    ),
    Case("launch-template-encrypted-volumes", "no-mappings", setter(LT, "-system", ("blockDeviceMappings",), _DELETE)),
    Case("eks-node-group-hardening", "no-launch-template", setter(NG, "-system", ("launchTemplate",), _DELETE)),
    Case("eks-node-group-hardening", "ssh", setter(NG, "-system", ("remoteAccess",), {"ec2SshKey": "ops"})),
    Case("eks-node-group-hardening", "public-subnets", _node_groups_on_public_subnets),
    Case("eks-gpu-node-group", "no-taint", setter(NG, "-gpu", ("taints",), _DELETE)),
    Case(
        "eks-gpu-node-group",
        "wrong-effect",
        setter(NG, "-gpu", ("taints",), [{"key": "nvidia.com/gpu", "value": "true", "effect": "PREFER_NO_SCHEDULE"}]),
    ),
    Case("eks-gpu-node-group", "family", setter(NG, "-gpu", ("instanceTypes",), ["g4dn.xlarge"])),
    Case("eks-gpu-node-group", "cpu-ami", setter(NG, "-gpu", ("amiType",), "AL2023_x86_64_STANDARD")),
    Case("eks-node-group-capacity", "spot-outside-dev", setter(NG, "-system", ("capacityType",), "SPOT")),
    Case(
        "eks-node-group-capacity",
        "spot-one-pool",
        lambda p: _inputs(p, NG, "-system").update(capacityType="SPOT", instanceTypes=["t3a.medium"]),
        stack="dev",
    ),
    Case("alb-listener-tls", "old-policy", setter(LISTENER, "-https", ("sslPolicy",), "ELBSecurityPolicy-2016-08")),
    Case(
        "alb-listener-tls",
        "http-forwards",
        setter(LISTENER, "-http", ("defaultActions",), [{"type": "forward", "targetGroupArn": "arn:tg"}]),
    ),
    Case(
        "alb-security-headers",
        "no-hsts",
        setter(LISTENER, "-https", ("routingHttpResponseStrictTransportSecurityHeaderValue",), _DELETE),
    ),
    Case(
        "alb-security-headers",
        "short-hsts",
        setter(LISTENER, "-https", ("routingHttpResponseStrictTransportSecurityHeaderValue",), "max-age=300"),
    ),
    Case(
        "alb-security-headers",
        "listener-csp",  # per listener = on the apex too, over the frontend's nonce CSP
        setter(LISTENER, "-https", ("routingHttpResponseContentSecurityPolicyHeaderValue",), "default-src 'self'"),
    ),
    Case("alb-access-logs", "off", setter(ALB, None, ("accessLogs", "enabled"), False)),
    Case("alb-drop-invalid-headers", "off", setter(ALB, None, ("dropInvalidHeaderFields",), False)),
    Case("alb-deletion-protection", "off", setter(ALB, None, ("enableDeletionProtection",), False)),
    Case("alb-waf", "no-association", lambda p: _drop(p, "aws:wafv2/webAclAssociation:WebAclAssociation")),
    # The repositories exist in the registry owner's stack only (dev; tests/policies/test_registry_policies.py).
    Case(
        "ecr-immutable-tags",
        "mutable",
        stack="dev",
        mutate=setter(ECR, "visionrag-api", ("imageTagMutability",), "MUTABLE"),
    ),
    Case(
        "ecr-scan-on-push",
        "off",
        stack="dev",
        mutate=setter(ECR, "visionrag-worker", ("imageScanningConfiguration", "scanOnPush"), False),
    ),
    Case(
        "ecr-kms-encryption",
        "aes",
        stack="dev",
        mutate=setter(ECR, "visionrag-embedder", ("encryptionConfigurations",), [{"encryptionType": "AES256"}]),
    ),
    Case(
        "ecr-lifecycle-policy",
        "missing",
        stack="dev",
        mutate=lambda p: _drop(p, "aws:ecr/lifecyclePolicy:LifecyclePolicy", "api"),
    ),
    Case("ecr-registry-owner", "repository-in-non-owner", _ecr_repository_in_prod),
    Case(
        "ecr-repository-policy-scoped",
        "any-principal",
        stack="dev",
        mutate=lambda p: _ecr_pull_principal(p, "*"),
    ),
    Case(
        "ecr-lifecycle-protects-releases",
        "catch-all-only",
        stack="dev",
        mutate=_ecr_catch_all_lifecycle,
    ),
    Case("secretsmanager-cmk", "aws-key", setter("aws:secretsmanager/secret:Secret", "-jwt", ("kmsKeyId",), _DELETE)),
    Case(
        "no-plaintext-secrets",
        "secret-string",
        setter("aws:secretsmanager/secretVersion:SecretVersion", "-jwt", ("secretString",), "hunter2"),
    ),
    Case(
        "no-plaintext-secrets",
        "env-literal",
        lambda p: _container(p, "api")["env"].append({"name": "OPENAI_API_KEY", "value": "not-a-real-key"}),
    ),
    Case(
        "no-plaintext-secrets",
        "configmap",
        lambda p: _inputs(p, "kubernetes:core/v1:ConfigMap")["data"].update(DB_PASSWORD="pa55word"),
    ),
    Case("no-plaintext-secrets", "k8s-secret", _k8s_secret_plain),
    Case("no-plaintext-secrets", "user-data", _userdata_key),
    Case(
        "no-plaintext-secrets",
        "cache-token",
        setter("aws:elasticache/replicationGroup:ReplicationGroup", None, ("authToken",), "plain-token-value"),
    ),
    Case(
        "k8s-container-resources",
        "no-memory-limit",
        lambda p: _container(p, "api")["resources"]["limits"].pop("memory"),
    ),
    Case(
        "k8s-container-resources",
        "cronjob-no-requests",
        lambda p: _inputs(p, "kubernetes:batch/v1:CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"][
            "containers"
        ][0]["resources"].pop("requests"),
    ),
    Case("k8s-gpu-scheduling", "no-toleration", lambda p: _pod(p, "embedder").pop("tolerations")),
    Case(
        "k8s-gpu-scheduling",
        "cpu-pod-tolerates",
        lambda p: _pod(p, "worker").update(
            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        ),
    ),
    Case(
        "k8s-image-pinning",
        "latest",
        lambda p: _container(p, "api").update(image="public.ecr.aws/visionrag/api:latest"),
    ),
    Case("k8s-image-pinning", "untagged", lambda p: _container(p, "worker").update(image="visionrag/worker")),
    # Signed-image admission (policies/rules/image_admission.py); more cases in test_image_admission_policy.py.
    Case("k8s-image-admission-enforced", "no-controller", lambda p: _drop(p, HELM, "policy-controller")),
    Case(
        "k8s-image-admission-enforced",
        "no-controller-staging",
        lambda p: _drop(p, HELM, "policy-controller"),
        "staging",
    ),
    Case("k8s-image-admission-enforced", "unsigned-repository", lambda p: _drop(p, CIP, "visionrag-ci-signed")),
    Case(
        "k8s-image-admission-enforced",
        "wrong-issuer",
        setter(CIP, "visionrag-ci-signed", ("spec", "authorities", 0, "keyless", "identities", 0, "issuer"), "x"),
    ),
    Case(
        "k8s-image-admission-enforced",
        "third-party-unreviewed-digest",
        lambda p: _container(p, "qdrant", "kubernetes:apps/v1:StatefulSet").update(
            image="docker.io/qdrant/qdrant@sha256:" + "b" * 64
        ),
    ),
    Case(
        "k8s-image-pinning", "tag-in-prod", lambda p: _container(p, "embedder").update(image="visionrag/embedder:0.1.0")
    ),
    Case(
        "k8s-container-security-context",
        "root",
        lambda p: _container(p, "api")["securityContext"].update(runAsNonRoot=False),
    ),
    Case(
        "k8s-container-security-context",
        "escalation",
        lambda p: _container(p, "worker")["securityContext"].pop("allowPrivilegeEscalation"),
    ),
    Case(
        "k8s-container-security-context",
        "writable-root",
        lambda p: _container(p, "qdrant", "kubernetes:apps/v1:StatefulSet")["securityContext"].update(
            readOnlyRootFilesystem=False
        ),
    ),
    Case(
        "k8s-container-security-context",
        "caps",
        lambda p: _container(p, "api")["securityContext"].update(capabilities={"drop": ["NET_RAW"]}),
    ),
    Case(
        "k8s-container-security-context",
        "privileged",
        lambda p: _container(p, "api")["securityContext"].update(privileged=True),
    ),
    Case("k8s-no-host-access", "host-network", lambda p: _pod(p, "worker").update(hostNetwork=True)),
    Case(
        "k8s-no-host-access",
        "host-path",
        lambda p: _pod(p, "api")["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run"}}),
    ),
    Case(
        "k8s-namespace-pss-restricted",
        "baseline",
        lambda p: _inputs(p, "kubernetes:core/v1:Namespace", "visionrag")["metadata"]["labels"].update(
            {"pod-security.kubernetes.io/enforce": "baseline"}
        ),
    ),
    Case(
        "k8s-default-deny-network-policy",
        "missing",
        lambda p: _drop(p, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "default-deny"),
    ),
    Case("k8s-default-deny-network-policy", "ingress-only", _default_deny_ingress_only),
    Case("k8s-pod-disruption-budget", "missing", lambda p: _drop(p, "kubernetes:policy/v1:PodDisruptionBudget", "api")),
    Case(
        "k8s-pod-disruption-budget",
        "zero-disruption",
        setter("kubernetes:policy/v1:PodDisruptionBudget", "worker", ("spec", "maxUnavailable"), 0.0),
    ),
    Case(
        "k8s-no-external-service",
        "load-balancer",
        setter("kubernetes:core/v1:Service", "api", ("spec", "type"), "LoadBalancer"),
    ),
    Case("s3-tls-only", "no-tls-version-floor", _no_tls_version_floor),
    Case("iam-no-wildcard-admin", "star-on-star", _wildcard_policy),
    Case("iam-no-wildcard-admin", "admin-attachment", _admin_attachment),
    Case("iam-trust-scoped", "irsa-without-sub", _irsa_without_sub),
    Case("iam-trust-scoped", "anyone", _trust_anyone),
    Case(
        "cognito-user-pool-hardened",
        "short-password",
        setter("aws:cognito/userPool:UserPool", "identity-users", ("passwordPolicy", "minimumLength"), 8.0),
    ),
    Case(
        "cognito-user-pool-hardened",
        "mfa-optional",
        setter("aws:cognito/userPool:UserPool", "identity-users", ("mfaConfiguration",), "OPTIONAL"),
    ),
    Case(
        "cognito-user-pool-hardened",
        "self-sign-up",
        setter(
            "aws:cognito/userPool:UserPool",
            "identity-users",
            ("adminCreateUserConfig", "allowAdminCreateUserOnly"),
            False,
        ),
    ),
    Case(
        "cognito-user-pool-hardened",
        "implicit-flow",
        setter("aws:cognito/userPoolClient:UserPoolClient", "identity-web", ("allowedOauthFlows",), ["implicit"]),
    ),
    Case(
        "eks-access-entries",
        "creator-admin",
        lambda p: _inputs(p, EKS)["accessConfig"].pop("bootstrapClusterCreatorAdminPermissions"),
    ),
    Case(
        "eks-access-entries",
        "configmap-only",
        lambda p: _inputs(p, EKS)["accessConfig"].update(authenticationMode="CONFIG_MAP"),
    ),
    Case(
        "eks-network-policy-enforced",
        "cni-without-network-policy",
        setter("aws:eks/addon:Addon", "-vpc-cni", ("configurationValues",), "{}"),
    ),
    Case("k8s-probes", "no-readiness", lambda p: _container(p, "api").pop("readinessProbe")),
    Case("gpu-device-plugin", "missing", lambda p: _drop(p, "kubernetes:helm.sh/v3:Release", "nvidia-device-plugin")),
    Case(
        "gpu-device-plugin",
        "toleration-mismatch",
        setter("kubernetes:helm.sh/v3:Release", "nvidia-device-plugin", ("values", "tolerations", 0, "value"), "yes"),
    ),
    Case(
        "gpu-device-plugin",
        "unpinned",
        setter("kubernetes:helm.sh/v3:Release", "nvidia-device-plugin", ("version",), _DELETE),
    ),
    Case(
        "k8s-no-pod-subnet-sources",
        "vpc-wide-ipblock",
        lambda p: _add(
            p,
            "kubernetes:networking.k8s.io/v1:NetworkPolicy",
            "allow-api",
            {
                "metadata": {"name": "allow-api", "namespace": "visionrag"},
                "spec": {
                    "podSelector": {"matchLabels": {"visionrag.io/role": "api"}},
                    "policyTypes": ["Ingress"],
                    # "The ALB" as the VPC CIDR: the node groups' subnets (every pod) are inside it.
                    "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 8000}]}],
                },
            },
            [],
        ),
    ),
    Case(
        "k8s-no-pod-subnet-sources",
        "trusted-proxies-vpc",
        lambda p: (
            _container(p, "api")
            .setdefault("env", [])
            .append({"name": "TRUSTED_PROXIES", "value": "10.0.200.0/24,10.0.16.0/22"})
        ),
    ),
    Case(
        "helm-merged-values-hardened",
        "chart-default-capability-kept",
        # Only `drop` set: Helm keeps whatever `add` the chart's defaults or template carry.
        setter(
            "kubernetes:helm.sh/v3:Release",
            "nvidia-device-plugin",
            ("values", "securityContext", "capabilities"),
            {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
        ),
    ),
    Case(
        "helm-merged-values-hardened",
        "no-requests",
        setter("kubernetes:helm.sh/v3:Release", "nvidia-device-plugin", ("values", "resources"), _DELETE),
    ),
    Case(
        "helm-merged-values-hardened",
        "unreviewed-version",
        setter("kubernetes:helm.sh/v3:Release", "nvidia-device-plugin", ("version",), "0.17.0"),
    ),
    Case(
        "cloudfront-viewer-tls", "tls-1.0", setter(CDN, None, ("viewerCertificate", "minimumProtocolVersion"), "TLSv1")
    ),
    Case(
        "cloudfront-viewer-tls",
        "default-cert",
        setter(
            CDN,
            None,
            ("viewerCertificate",),
            {"cloudfrontDefaultCertificate": True, "minimumProtocolVersion": "TLSv1.2_2021"},
        ),
    ),
    Case(
        "cloudfront-https-only",
        "allow-all",
        setter(CDN, None, ("orderedCacheBehaviors", 0, "viewerProtocolPolicy"), "allow-all"),
    ),
    Case(
        "cloudfront-https-only",
        "http-origin",
        setter(CDN, None, ("origins", 0, "customOriginConfig", "originProtocolPolicy"), "http-only"),
    ),
    Case("cloudfront-waf", "no-acl", setter(CDN, None, ("webAclId",), _DELETE)),
    Case(
        "cloudfront-security-headers",
        "no-policy",
        setter(CDN, None, ("defaultCacheBehavior", "responseHeadersPolicyId"), _DELETE),
    ),
    Case(
        "cloudfront-security-headers",
        "short-hsts",
        setter(
            CDN_HEADERS, None, ("securityHeadersConfig", "strictTransportSecurity", "accessControlMaxAgeSec"), 300.0
        ),
    ),
    Case(
        "cloudfront-access-logs",
        "no-delivery",
        lambda p: _drop(p, "aws:cloudwatch/logDeliverySource:LogDeliverySource"),
    ),
    Case("malware-scanner-deployed", "api-unwired", _unwire_scanner),
    Case("malware-scanner-deployed", "api-unwired-staging", _unwire_scanner, stack="staging"),
    Case("malware-scanner-deployed", "one-replica", setter(DEPLOYMENT, "clamav", ("spec", "replicas"), 1.0)),
    Case("cost-monthly-budget", "overrun", _budget_overrun),
    Case("cost-gpu-ceiling", "max-nodes", setter(NG, "-gpu", ("scalingConfig", "maxSize"), 10.0)),
    Case("cost-gpu-ceiling", "bigger-gpus", setter(NG, "-gpu", ("instanceTypes",), ["g5.12xlarge"])),
]


@pytest.mark.parametrize("case", FLAG_CASES, ids=lambda c: f"{c.policy}[{c.id}]")
def test_policy_flags_the_broken_property(case: Case, plans, judge) -> None:
    plan = plans[case.stack]
    case.mutate(plan)
    violations = judge(plan, case.stack)
    fired = {v.policy for v in violations}
    assert case.policy in fired, f"{case.policy} did not fire; got {violations}"
    assert fired == {case.policy}, f"only {case.policy} should fire, got {sorted(fired)}: {violations}"
    assert {v.level for v in violations} == {case.level}


def test_budget_overrun_message_names_total_and_budget(plan, judge) -> None:
    _budget_overrun(plan)
    (v,) = judge(plan)
    assert "exceeds the budget $12,000.00" in v.message and "visionrag-prod-system" in v.message


def test_unpriceable_instance_type_fails_the_budget_not_priced_at_zero(plan, judge) -> None:
    _inputs(plan, NG, "-system")["instanceTypes"] = ["m99.mega"]
    violations = judge(plan)
    assert [(v.policy, v.level) for v in violations] == [("cost-monthly-budget", "mandatory")]
    assert "m99.mega" in violations[0].message and "cannot price" in violations[0].message


def test_every_policy_has_a_flag_case() -> None:
    assert {p.name for p in ALL_POLICIES} == {c.policy for c in FLAG_CASES}


# ---- must-pass fixtures --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_compliant_plan_passes_every_policy(stack: str, plans, judge) -> None:
    assert judge(plans[stack], stack) == []


PASS_CASES: list[tuple[str, Callable[[Plan], None], str]] = [
    ("s3-no-public-policy: Principal * pinned to a VPC endpoint", _vpce_read, "prod"),
    ("s3-sse-kms: log bucket on SSE-S3 (AWS log delivery needs it)", lambda p: None, "prod"),
    (
        "s3-replication: disabled in dev",
        lambda p: _drop(p, "aws:s3/bucketReplicationConfig:BucketReplicationConfig", "-pages-replication"),
        "dev",
    ),
    (
        "s3-object-lock: GOVERNANCE allowed in staging",
        setter(
            "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
            "-audit-lock",
            ("rule", "defaultRetention", "mode"),
            "GOVERNANCE",
        ),
        "staging",
    ),
    (
        "kms-deletion-window: unset means 30 days",
        setter("aws:kms/key:Key", "-logs", ("deletionWindowInDays",), _DELETE),
        "prod",
    ),
    (
        "kms-key-rotation: asymmetric keys cannot rotate",
        lambda p: _inputs(p, "aws:kms/key:Key", "-data").update(
            customerMasterKeySpec="RSA_2048", keyUsage="SIGN_VERIFY", enableKeyRotation=False
        ),
        "prod",
    ),
    (
        "eks-endpoint-private: dev allow-listed office range",
        lambda p: _inputs(p, EKS)["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["203.0.113.0/25"]),
        "dev",
    ),
    ("alb-deletion-protection: off in dev", setter(ALB, None, ("enableDeletionProtection",), False), "dev"),
    (
        "k8s-image-pinning: tags allowed in dev",
        lambda p: _container(p, "api").update(image="visionrag/api:0.1.0"),
        "dev",
    ),
    (
        "k8s-gpu-scheduling: DaemonSet node agent tolerates the GPU taint",
        lambda p: _add(
            p,
            "kubernetes:apps/v1:DaemonSet",
            "dcgm",
            {
                "metadata": {"name": "dcgm", "namespace": "visionrag"},
                "spec": {"template": {"spec": {**_pod(p, "worker"), "tolerations": [{"operator": "Exists"}]}}},
            },
            [],
        ),
        "prod",
    ),
    (
        "no-plaintext-secrets: secret placeholders and references",
        lambda p: _container(p, "api")["env"].extend(
            [
                {"name": "REDIS_PASSWORD", "value": "[secret]"},
                {"name": "TOKEN_TTL_SECONDS", "value": "900"},
                {"name": "JWKS_URL", "value": "https://idp/jwks"},
            ]
        ),
        "prod",
    ),
    ("sg-no-public-ingress: VPC-internal source", lambda p: _ingress(p, "vpc", "-nodes", "10.0.0.0/16", 22.0), "prod"),
    (
        "eks-node-group-capacity: Spot from two pools in dev",
        lambda p: _inputs(p, NG, "-system").update(capacityType="SPOT", instanceTypes=["t3a.medium", "t3.medium"]),
        "dev",
    ),
    (
        "cost-gpu-ceiling: dev at its ceiling",
        setter(NG, "-gpu", ("scalingConfig",), {"minSize": 0.0, "maxSize": 1.0, "desiredSize": 0.0}),
        "dev",
    ),
]


@pytest.mark.parametrize(("label", "mutate", "stack"), PASS_CASES, ids=[c[0] for c in PASS_CASES])
def test_policy_passes_the_legitimate_variant(label: str, mutate, stack: str, plans, judge) -> None:
    plan = plans[stack]
    mutate(plan)
    assert judge(plan, stack) == []


def test_region_of_interface_endpoints_is_the_stack_region(plan) -> None:
    # Guards the fixture itself: endpoints live in the primary region the price table knows.
    assert all(REGION in r["inputs"]["serviceName"] for r in find_all(plan, "aws:ec2/vpcEndpoint:VpcEndpoint"))
