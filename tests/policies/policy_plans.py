"""Hand-built plans in the exact shape `python -m stacks preview --format json` prints.

Inputs are camelCase as pulumi-aws v7 / pulumi-kubernetes record them under the offline engine: sibling `bucket`
inputs are the bucket's mock id (its name), numbers are floats, secrets are "[secret]". ``compliant_plan`` is a
realistic prod-like stack that must pass every policy; tests break it one property at a time.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from infra.registry import CROSS_ACCOUNT_ACTIONS, lifecycle_policy
from infra.workloads.addons import CHARTS
from infra.workloads.image_admission import (
    INCLUDE_LABEL,
    AdmissionSettings,
    chart_values,
    project_globs,
    signer_identity,
)
from infra.workloads.image_globs import glob_matches, normalize

ACCOUNT = "123456789012"
REGION = "us-east-1"
REPLICA_REGION = "us-west-2"
DIGEST = "@sha256:" + "a" * 64
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


class PlanBuilder:
    def __init__(self, stack: str = "prod") -> None:
        self.stack = stack
        self.resources: list[dict[str, Any]] = []

    def urn(self, type_: str, name: str, parent_type: str | None = None) -> str:
        chain = f"{parent_type}${type_}" if parent_type else type_
        return f"urn:pulumi:{self.stack}::visionrag::{chain}::{name}"

    def add(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any],
        *,
        deps: list[str] | tuple[str, ...] = (),
        parent: str | None = None,
        provider: str | None = None,
        prop_deps: dict[str, list[str]] | None = None,
    ) -> str:
        custom = not type_.startswith("visionrag:")
        parent_type = None
        if parent:
            parent_type = next(r["type"] for r in self.resources if r["urn"] == parent)
        urn = self.urn(type_, name, parent_type)
        record = {
            "urn": urn,
            "type": type_,
            "name": name,
            "parent": parent,
            "dependencies": list(deps),
            "inputs": inputs,
            "outputs": _mock_outputs(type_, name, inputs),
            "custom": custom,
            "provider": provider,
        }
        if prop_deps:
            record["propertyDependencies"] = prop_deps
        self.resources.append(record)
        return urn

    def plan(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "config": {"tier": self.stack, "region": REGION, "replicaRegion": REPLICA_REGION},
            "resources": self.resources,
            "outputs": {},
        }


def _mock_outputs(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs echoed plus id and ARN, the way stacks/engine/mocks.py answers for AWS resources."""
    ident = inputs.get("bucket") or inputs.get("name") or name
    out = {**inputs, "id": ident}
    if type_.startswith("aws:"):
        mod, _, res = type_.split(":")[1].partition("/")
        out["arn"] = (
            f"arn:aws:s3:::{ident}" if mod == "s3" else f"arn:aws:{mod}:{REGION}:{ACCOUNT}:{res.lower()}/{ident}"
        )
    return out


def kms_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{name}"


def _tls_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "DenyOldTls",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                },
            ],
        }
    )


def add_bucket(
    b: PlanBuilder,
    role: str,
    *,
    parent: str,
    provider: str,
    log_target: tuple[str, str] | None,
    sse_key: str | None,
    region: str | None = None,
    object_lock: str | None = None,
    replicate_to: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """A bucket with every sibling; returns (urn, physical name)."""
    name = f"visionrag-{b.stack}-{role}"
    extra = {"region": region} if region else {}
    bucket = b.add(
        "aws:s3/bucket:Bucket",
        name,
        {
            "bucket": name,
            "forceDestroy": False,
            "objectLockEnabled": object_lock is not None,
            "tags": {"role": role},
            **extra,
        },
        parent=parent,
        provider=provider,
    )
    sib: dict[str, Any] = {"parent": parent, "provider": provider}
    b.add(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        f"{name}-pab",
        {
            "bucket": name,
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
            **extra,
        },
        deps=[bucket],
        **sib,
    )
    b.add(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        f"{name}-ownership",
        {"bucket": name, "rule": {"objectOwnership": "BucketOwnerEnforced"}, **extra},
        deps=[bucket],
        **sib,
    )
    default = {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": sse_key} if sse_key else {"sseAlgorithm": "AES256"}
    b.add(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{name}-sse",
        {
            "bucket": name,
            "rules": [{"applyServerSideEncryptionByDefault": default, "bucketKeyEnabled": bool(sse_key)}],
            **extra,
        },
        deps=[bucket],
        **sib,
    )
    b.add(
        "aws:s3/bucketVersioning:BucketVersioning",
        f"{name}-versioning",
        {"bucket": name, "versioningConfiguration": {"status": "Enabled"}, **extra},
        deps=[bucket],
        **sib,
    )
    b.add(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        f"{name}-lifecycle",
        {
            "bucket": name,
            "rules": [
                {
                    "id": "noncurrent",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrentVersionExpiration": {"noncurrentDays": 90.0},
                },
                {
                    "id": "multipart",
                    "status": "Enabled",
                    "filter": {},
                    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0},
                },
            ],
            **extra,
        },
        deps=[bucket],
        **sib,
    )
    b.add(
        "aws:s3/bucketPolicy:BucketPolicy",
        f"{name}-policy",
        {"bucket": name, "policy": _tls_policy(name), **extra},
        deps=[bucket],
        **sib,
    )
    if log_target:
        target_urn, target_name = log_target
        b.add(
            "aws:s3/bucketLogging:BucketLogging",
            f"{name}-logging",
            {"bucket": name, "targetBucket": target_name, "targetPrefix": f"{name}/", **extra},
            deps=[bucket, target_urn],
            **sib,
        )
    # The daily size and object-count alarms (s3-storage-alarms), in the bucket's region, paging that region's topic.
    topic = f"arn:aws:sns:{region or REGION}:{ACCOUNT}:visionrag-{b.stack}-alerts"
    for metric, storage_type in (("BucketSizeBytes", "StandardStorage"), ("NumberOfObjects", "AllStorageTypes")):
        b.add(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            f"{name}-{metric}",
            {
                "namespace": "AWS/S3",
                "metricName": metric,
                "dimensions": {"BucketName": name, "StorageType": storage_type},
                "period": 86400.0,
                "evaluationPeriods": 2.0,
                "statistic": "Maximum",
                "comparisonOperator": "GreaterThanThreshold",
                "threshold": 1000.0,
                "alarmActions": [topic],
                **extra,
            },
            parent=parent,
            provider=provider,
        )
    if object_lock:
        b.add(
            "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
            f"{name}-lock",
            {"bucket": name, "rule": {"defaultRetention": {"mode": object_lock, "days": 2555.0}}, **extra},
            deps=[bucket],
            **sib,
        )
    if replicate_to:
        dest_urn, dest_name = replicate_to
        role_urn = b.add(
            "aws:iam/role:Role",
            f"{name}-replication-role",
            {"assumeRolePolicy": "{}", "name": f"{name}-replication"},
            parent=parent,
            provider=provider,
        )
        b.add(
            "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
            f"{name}-replication",
            {
                "bucket": name,
                "role": f"arn:aws:iam::{ACCOUNT}:role/{name}-replication",
                "rules": [
                    {
                        "id": "all",
                        "status": "Enabled",
                        "filter": {},
                        "deleteMarkerReplication": {"status": "Enabled"},
                        "destination": {
                            "bucket": f"arn:aws:s3:::{dest_name}",
                            "storageClass": "STANDARD",
                            "encryptionConfiguration": {"replicaKmsKeyId": kms_arn("data-replica", REPLICA_REGION)},
                        },
                        "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
                    }
                ],
            },
            deps=[bucket, dest_urn, role_urn],
            **sib,
        )
    return bucket, name


def _container(name: str, image: str, *, cpu: str = "500m", mem: str = "1Gi", gpu: bool = False) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": "1", "memory": mem}
    requests: dict[str, Any] = {"cpu": cpu, "memory": mem}
    if gpu:
        limits["nvidia.com/gpu"] = "1"
        requests["nvidia.com/gpu"] = "1"
    return {
        "name": name,
        "image": image,
        "ports": [{"containerPort": 8000.0, "name": "http"}],
        "resources": {"requests": requests, "limits": limits},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001.0,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "env": [
            {"name": "ENVIRONMENT", "value": "prod"},
            {"name": "QDRANT_API_KEY", "valueFrom": {"secretKeyRef": {"name": "qdrant", "key": "api-key"}}},
            {"name": "JWT_SECRET_FILE", "value": "/var/run/secrets/visionrag/jwt"},
        ],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10.0},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 20.0},
    }


def _pod_spec(containers: list[dict[str, Any]], *, gpu: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": "workload",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "fsGroup": 10001.0, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    if gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        spec["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    return spec


def _workload(
    kind: str,
    name: str,
    replicas: float,
    container: dict[str, Any],
    *,
    gpu: bool = False,
    claims: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": _pod_spec([container], gpu=gpu)},
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "visionrag"}, "spec": spec}


# (group, instance type, (min, max, desired), gpu) per tier, as stacks/config/tiers.py sizes them.
NODE_GROUPS = {
    "dev": (("system", "t3a.medium", (2.0, 4.0, 2.0), False), ("gpu", "g5.xlarge", (0.0, 1.0, 0.0), True)),
    "staging": (("system", "m6i.large", (3.0, 6.0, 3.0), False), ("gpu", "g5.xlarge", (0.0, 2.0, 0.0), True)),
    "prod": (("system", "m6i.xlarge", (3.0, 9.0, 3.0), False), ("gpu", "g5.2xlarge", (1.0, 4.0, 1.0), True)),
}
# Groups on Spot capacity, with the interchangeable types tiers.py lists for them (dev's system nodes only).
SPOT_GROUPS = {("dev", "system"): ["t3a.medium", "t3.medium"]}


def compliant_plan(stack: str = "prod") -> dict[str, Any]:
    b = PlanBuilder(stack)
    aws = b.add("pulumi:providers:aws", "default_7_51_1", {"region": REGION})
    replica = b.add("pulumi:providers:aws", "replica", {"region": REPLICA_REGION})
    k8s = b.add("pulumi:providers:kubernetes", "eks", {"kubeconfig": "[secret]"})
    prov: dict[str, Any] = {"provider": aws}

    keys = b.add("visionrag:infra:Keys", "keys", {})
    for k in ("data", "eks", "ebs", "logs", "secrets"):
        b.add(
            "aws:kms/key:Key",
            f"visionrag-{stack}-{k}",
            {"description": f"{k} key", "enableKeyRotation": True, "deletionWindowInDays": 30.0, "policy": "{}"},
            parent=keys,
            **prov,
        )
    b.add(
        "aws:kms/key:Key",
        f"visionrag-{stack}-data-replica",
        {"description": "replica data key", "enableKeyRotation": True, "deletionWindowInDays": 30.0},
        parent=keys,
        provider=replica,
    )

    # ---- network
    net = b.add("visionrag:infra:Network", "network", {})
    vpc = b.add(
        "aws:ec2/vpc:Vpc",
        f"visionrag-{stack}-vpc",
        {"cidrBlock": "10.0.0.0/16", "enableDnsHostnames": True, "enableDnsSupport": True},
        parent=net,
        **prov,
    )
    b.add(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        f"visionrag-{stack}-default-sg",
        {"vpcId": f"visionrag-{stack}-vpc"},
        deps=[vpc],
        parent=net,
        **prov,
    )
    private, public = [], []
    for i, az in enumerate("abc"):
        private.append(
            b.add(
                "aws:ec2/subnet:Subnet",
                f"visionrag-{stack}-private-{az}",
                {
                    "vpcId": f"visionrag-{stack}-vpc",
                    "cidrBlock": f"10.0.{i * 16}.0/20",
                    "availabilityZone": f"{REGION}{az}",
                    "mapPublicIpOnLaunch": False,
                    "tags": {"kubernetes.io/role/internal-elb": "1"},
                },
                deps=[vpc],
                parent=net,
                **prov,
            )
        )
        public.append(
            b.add(
                "aws:ec2/subnet:Subnet",
                f"visionrag-{stack}-public-{az}",
                {
                    "vpcId": f"visionrag-{stack}-vpc",
                    "cidrBlock": f"10.0.{200 + i}.0/24",
                    "availabilityZone": f"{REGION}{az}",
                    "mapPublicIpOnLaunch": False,
                    "tags": {"kubernetes.io/role/elb": "1"},
                },
                deps=[vpc],
                parent=net,
                **prov,
            )
        )
        if stack == "dev" and i > 0:
            continue  # as tiers.py: dev shares one NAT gateway
        eip = b.add("aws:ec2/eip:Eip", f"visionrag-{stack}-nat-{az}", {"domain": "vpc"}, parent=net, **prov)
        b.add(
            "aws:ec2/natGateway:NatGateway",
            f"visionrag-{stack}-nat-{az}",
            {"subnetId": f"visionrag-{stack}-public-{az}", "allocationId": f"visionrag-{stack}-nat-{az}"},
            deps=[public[-1], eip],
            parent=net,
            **prov,
        )
    flow_lg = b.add(
        "aws:cloudwatch/logGroup:LogGroup",
        f"visionrag-{stack}-flow-logs",
        {"name": f"/visionrag/{stack}/flow-logs", "retentionInDays": 365.0, "kmsKeyId": kms_arn("logs")},
        parent=net,
        **prov,
    )
    b.add(
        "aws:ec2/flowLog:FlowLog",
        f"visionrag-{stack}-flow-log",
        {
            "vpcId": f"visionrag-{stack}-vpc",
            "trafficType": "ALL",
            "logDestinationType": "cloud-watch-logs",
            "logDestination": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/visionrag/{stack}/flow-logs",
        },
        deps=[vpc, flow_lg],
        parent=net,
        **prov,
    )
    subnet_names = [f"visionrag-{stack}-private-{az}" for az in "abc"]
    # As tiers.py: dev has no interface endpoints (its NAT gateway carries that traffic).
    for svc in () if stack == "dev" else ("ecr.api", "ecr.dkr", "sts", "kms", "logs", "secretsmanager", "ec2"):
        b.add(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            f"visionrag-{stack}-{svc}",
            {
                "vpcId": f"visionrag-{stack}-vpc",
                "serviceName": f"com.amazonaws.{REGION}.{svc}",
                "vpcEndpointType": "Interface",
                "privateDnsEnabled": True,
                "subnetIds": subnet_names,
            },
            deps=[vpc, *private],
            parent=net,
            **prov,
        )
    b.add(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        f"visionrag-{stack}-s3",
        {"vpcId": f"visionrag-{stack}-vpc", "serviceName": f"com.amazonaws.{REGION}.s3", "vpcEndpointType": "Gateway"},
        deps=[vpc],
        parent=net,
        **prov,
    )

    # ---- storage
    st = b.add("visionrag:infra:Storage", "storage", {})
    logs_urn, logs_name = add_bucket(b, "access-logs", parent=st, provider=aws, log_target=None, sse_key=None)
    rlogs = add_bucket(
        b, "access-logs-replica", parent=st, provider=replica, log_target=None, sse_key=None, region=REPLICA_REGION
    )
    replicas: dict[str, tuple[str, str]] = {}
    for role in ("pages", "snapshots"):
        replicas[role] = add_bucket(
            b,
            f"{role}-replica",
            parent=st,
            provider=replica,
            log_target=rlogs,
            sse_key=kms_arn("data-replica", REPLICA_REGION),
            region=REPLICA_REGION,
        )
    for role in ("pages", "snapshots", "audit", "models"):
        add_bucket(
            b,
            role,
            parent=st,
            provider=aws,
            log_target=(logs_urn, logs_name),
            sse_key=kms_arn("data"),
            object_lock="COMPLIANCE" if role == "audit" else None,
            replicate_to=replicas.get(role),
        )

    # ---- secrets and cache
    sec = b.add("visionrag:infra:Secrets", "secrets", {})
    for s in ("qdrant-api-key", "jwt", "llm-api-key", "cache-auth"):
        s_urn = b.add(
            "aws:secretsmanager/secret:Secret",
            f"visionrag-{stack}-{s}",
            {"name": f"visionrag/{stack}/{s}", "kmsKeyId": kms_arn("secrets"), "recoveryWindowInDays": 30.0},
            parent=sec,
            **prov,
        )
        b.add(
            "aws:secretsmanager/secretVersion:SecretVersion",
            f"visionrag-{stack}-{s}",
            {"secretId": f"visionrag/{stack}/{s}", "secretString": "[secret]"},
            deps=[s_urn],
            parent=sec,
            **prov,
        )
    # ---- identity (infra/identity.py): the stack's Cognito user pool and its web client
    ident = b.add("visionrag:infra:Identity", "identity", {})
    hardened = stack != "dev"
    b.add(
        "aws:cognito/userPool:UserPool",
        "identity-users",
        {
            "name": f"visionrag-{stack}-users",
            "passwordPolicy": {
                "minimumLength": 14.0,
                "requireLowercase": True,
                "requireUppercase": True,
                "requireNumbers": True,
                "requireSymbols": True,
                "temporaryPasswordValidityDays": 3.0,
            },
            "mfaConfiguration": "ON" if hardened else "OPTIONAL",
            "softwareTokenMfaConfiguration": {"enabled": True},
            "adminCreateUserConfig": {"allowAdminCreateUserOnly": True},
            "deletionProtection": "ACTIVE" if hardened else "INACTIVE",
        },
        parent=ident,
        **prov,
    )
    b.add(
        "aws:cognito/userPoolClient:UserPoolClient",
        "identity-web",
        {
            "name": f"visionrag-{stack}-web",
            "generateSecret": True,
            "allowedOauthFlows": ["code"],
            "allowedOauthScopes": ["openid", "email", "profile"],
            "callbackUrls": [f"https://{stack}.visionrag.example.com/api/auth/callback/cognito"],
            "preventUserExistenceErrors": "ENABLED",
            "enableTokenRevocation": True,
        },
        parent=ident,
        **prov,
    )
    cache = b.add("visionrag:infra:Cache", "cache", {})
    b.add(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        f"visionrag-{stack}-cache",
        {
            "replicationGroupId": f"visionrag-{stack}-cache",
            "description": "rate limits and jobs",
            "engine": "valkey",
            "engineVersion": "8.0",
            "nodeType": "cache.t4g.micro" if stack == "dev" else "cache.r7g.large",
            "numCacheClusters": 2.0,
            "multiAzEnabled": True,
            "automaticFailoverEnabled": True,
            "atRestEncryptionEnabled": True,
            "kmsKeyId": kms_arn("data"),
            "transitEncryptionEnabled": True,
            "authToken": "[secret]",
            "subnetGroupName": f"visionrag-{stack}-cache",
        },
        parent=cache,
        **prov,
    )

    # ---- security groups and edge
    edge = b.add("visionrag:infra:Edge", "edge", {})
    alb_sg = b.add(
        "aws:ec2/securityGroup:SecurityGroup",
        f"visionrag-{stack}-alb",
        {"name": f"visionrag-{stack}-alb", "vpcId": f"visionrag-{stack}-vpc", "description": "ALB"},
        deps=[vpc],
        parent=edge,
        **prov,
    )
    node_sg = b.add(
        "aws:ec2/securityGroup:SecurityGroup",
        f"visionrag-{stack}-nodes",
        {"name": f"visionrag-{stack}-nodes", "vpcId": f"visionrag-{stack}-vpc", "description": "nodes"},
        deps=[vpc],
        parent=edge,
        **prov,
    )
    for port in (80.0, 443.0):
        for cidr_key, cidr in (("cidrIpv4", "0.0.0.0/0"), ("cidrIpv6", "::/0")):
            b.add(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                f"visionrag-{stack}-alb-{int(port)}-{cidr_key}",
                {
                    "securityGroupId": f"visionrag-{stack}-alb",
                    cidr_key: cidr,
                    "fromPort": port,
                    "toPort": port,
                    "ipProtocol": "tcp",
                },
                deps=[alb_sg],
                parent=edge,
                **prov,
            )
    b.add(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        f"visionrag-{stack}-nodes-from-alb",
        {
            "securityGroupId": f"visionrag-{stack}-nodes",
            "referencedSecurityGroupId": f"visionrag-{stack}-alb",
            "fromPort": 8000.0,
            "toPort": 8000.0,
            "ipProtocol": "tcp",
        },
        deps=[node_sg, alb_sg],
        parent=edge,
        **prov,
    )
    alb = b.add(
        "aws:lb/loadBalancer:LoadBalancer",
        f"visionrag-{stack}-alb",
        {
            "name": f"visionrag-{stack}-alb",
            "loadBalancerType": "application",
            "internal": False,
            "securityGroups": [f"visionrag-{stack}-alb"],
            "subnets": [f"visionrag-{stack}-public-{az}" for az in "abc"],
            "dropInvalidHeaderFields": True,
            "enableDeletionProtection": True,
            "accessLogs": {"bucket": logs_name, "prefix": "alb", "enabled": True},
        },
        deps=[alb_sg, *public, logs_urn],
        parent=edge,
        **prov,
    )
    alb_arn = f"arn:aws:lb:{REGION}:{ACCOUNT}:loadbalancer/visionrag-{stack}-alb"
    b.add(
        "aws:lb/listener:Listener",
        f"visionrag-{stack}-https",
        {
            "loadBalancerArn": alb_arn,
            "port": 443.0,
            "protocol": "HTTPS",
            "sslPolicy": TLS_POLICY,
            "certificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/visionrag",
            "defaultActions": [
                {"type": "fixed-response", "fixedResponse": {"contentType": "text/plain", "statusCode": "404"}}
            ],
            "routingHttpResponseStrictTransportSecurityHeaderValue": "max-age=63072000; includeSubDomains; preload",
            "routingHttpResponseXContentTypeOptionsHeaderValue": "nosniff",
            "routingHttpResponseXFrameOptionsHeaderValue": "DENY",
        },
        deps=[alb],
        parent=edge,
        **prov,
    )
    b.add(
        "aws:lb/listener:Listener",
        f"visionrag-{stack}-http",
        {
            "loadBalancerArn": alb_arn,
            "port": 80.0,
            "protocol": "HTTP",
            "defaultActions": [
                {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
            ],
        },
        deps=[alb],
        parent=edge,
        **prov,
    )
    acl = b.add(
        "aws:wafv2/webAcl:WebAcl",
        f"visionrag-{stack}-waf",
        {
            "name": f"visionrag-{stack}-waf",
            "scope": "REGIONAL",
            "defaultAction": {"allow": {}},
            "rules": [
                {"name": n, "priority": float(i)} for i, n in enumerate(("common", "known-bad-inputs", "rate-limit"))
            ],
            "visibilityConfig": {"cloudwatchMetricsEnabled": True, "metricName": "waf", "sampledRequestsEnabled": True},
        },
        parent=edge,
        **prov,
    )
    b.add(
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        f"visionrag-{stack}-waf-alb",
        {"resourceArn": alb_arn, "webAclArn": f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/waf"},
        deps=[alb, acl],
        parent=edge,
        **prov,
    )
    # CloudFront in front of the ALB (infra/cdn.py): its own CLOUDFRONT ACL, headers policy and logs.
    cdn_acl = b.add(
        "aws:wafv2/webAcl:WebAcl",
        f"visionrag-{stack}-cdn",
        {"name": f"visionrag-{stack}-cdn", "scope": "CLOUDFRONT", "defaultAction": {"allow": {}}, "rules": []},
        parent=edge,
        **prov,
    )
    headers = b.add(
        "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy",
        f"visionrag-{stack}-security-headers",
        {
            "name": f"visionrag-{stack}-security-headers",
            "securityHeadersConfig": {
                "strictTransportSecurity": {
                    "accessControlMaxAgeSec": 63072000.0,
                    "includeSubdomains": True,
                    "preload": True,
                    "override": True,
                },
                "contentTypeOptions": {"override": True},
                "frameOptions": {"frameOption": "DENY", "override": True},
            },
        },
        parent=edge,
        **prov,
    )
    behaviour = {
        "viewerProtocolPolicy": "redirect-to-https",
        "responseHeadersPolicyId": f"visionrag-{stack}-security-headers",
        "cachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
    }
    distribution = b.add(
        "aws:cloudfront/distribution:Distribution",
        f"visionrag-{stack}-cdn-distribution",
        {
            "enabled": True,
            "webAclId": f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/webacl/visionrag-{stack}-cdn",
            "origins": [{"originId": "alb", "customOriginConfig": {"originProtocolPolicy": "https-only"}}],
            "defaultCacheBehavior": behaviour,
            "orderedCacheBehaviors": [{**behaviour, "pathPattern": "/_next/static/*"}],
            "viewerCertificate": {
                "acmCertificateArn": f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/cdn",
                "sslSupportMethod": "sni-only",
                "minimumProtocolVersion": "TLSv1.2_2021",
            },
        },
        deps=[alb, cdn_acl, headers],
        parent=edge,
        **prov,
    )
    b.add(
        "aws:cloudwatch/logDeliverySource:LogDeliverySource",
        f"visionrag-{stack}-cdn-logs",
        {"name": f"visionrag-{stack}-cdn", "logType": "ACCESS_LOGS"},
        deps=[distribution],
        prop_deps={"resourceArn": [distribution]},
        parent=edge,
        **prov,
    )
    for alarm in ("alb-5xx", "unhealthy-targets", "cache-memory"):
        b.add(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            f"visionrag-{stack}-{alarm}",
            {"comparisonOperator": "GreaterThanThreshold", "evaluationPeriods": 3.0},
            parent=edge,
            **prov,
        )

    # ---- registry: only the owner stack (dev) declares the shared repositories (docs/delivery.md)
    if stack == "dev":
        reg = b.add("visionrag:infra:Registry", "registry", {})
        lifecycle = lifecycle_policy({"dev": 10, "staging": 10, "prod": 20}, keep_builds=30, untagged_expiry_days=7)
        pull = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TierAccountsPull",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                    "Action": list(CROSS_ACCOUNT_ACTIONS),
                }
            ],
        }
        for repo in ("api", "worker", "embedder"):
            r_urn = b.add(
                "aws:ecr/repository:Repository",
                f"visionrag-{repo}",
                {
                    "name": f"visionrag-{repo}",
                    "imageTagMutability": "IMMUTABLE",
                    "imageScanningConfiguration": {"scanOnPush": True},
                    "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": kms_arn("registry")}],
                },
                parent=reg,
                **prov,
            )
            b.add(
                "aws:ecr/lifecyclePolicy:LifecyclePolicy",
                f"visionrag-{repo}",
                {"repository": f"visionrag-{repo}", "policy": lifecycle},
                deps=[r_urn],
                parent=reg,
                **prov,
            )
            b.add(
                "aws:ecr/repositoryPolicy:RepositoryPolicy",
                f"visionrag-{repo}-pull",
                {"repository": f"visionrag-{repo}", "policy": json.dumps(pull)},
                deps=[r_urn],
                parent=reg,
                **prov,
            )

    # ---- cluster
    cl = b.add("visionrag:infra:Cluster", "cluster", {})
    b.add(
        "aws:cloudwatch/logGroup:LogGroup",
        f"visionrag-{stack}-eks-logs",
        {"name": f"/aws/eks/visionrag-{stack}/cluster", "retentionInDays": 365.0, "kmsKeyId": kms_arn("logs")},
        parent=cl,
        **prov,
    )
    cluster = b.add(
        "aws:eks/cluster:Cluster",
        f"visionrag-{stack}",
        {
            "name": f"visionrag-{stack}",
            "version": "1.33",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks",
            "vpcConfig": {"subnetIds": subnet_names, "endpointPrivateAccess": True, "endpointPublicAccess": False},
            "encryptionConfig": {"provider": {"keyArn": kms_arn("eks")}, "resources": ["secrets"]},
            "enabledClusterLogTypes": ["api", "audit", "authenticator"],
            "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
        },
        deps=private,
        parent=cl,
        **prov,
    )
    for group, itype, sizes, gpu in NODE_GROUPS[stack]:
        lt = b.add(
            "aws:ec2/launchTemplate:LaunchTemplate",
            f"visionrag-{stack}-{group}",
            {
                "name": f"visionrag-{stack}-{group}",
                "metadataOptions": {
                    "httpEndpoint": "enabled",
                    "httpTokens": "required",
                    "httpPutResponseHopLimit": 1.0,
                },
                "blockDeviceMappings": [
                    {
                        "deviceName": "/dev/xvda",
                        "ebs": {
                            "encrypted": "true",
                            "kmsKeyId": kms_arn("ebs"),
                            "volumeSize": 40.0 if stack == "dev" and not gpu else 100.0,  # as tiers.py
                            "volumeType": "gp3",
                            "deleteOnTermination": "true",
                        },
                    }
                ],
            },
            parent=cl,
            **prov,
        )
        ng: dict[str, Any] = {
            "clusterName": f"visionrag-{stack}",
            "nodeGroupName": f"visionrag-{stack}-{group}",
            "nodeRoleArn": f"arn:aws:iam::{ACCOUNT}:role/nodes",
            "subnetIds": subnet_names,
            "instanceTypes": SPOT_GROUPS.get((stack, group), [itype]),
            "capacityType": "SPOT" if (stack, group) in SPOT_GROUPS else "ON_DEMAND",
            "scalingConfig": {"minSize": sizes[0], "maxSize": sizes[1], "desiredSize": sizes[2]},
            "launchTemplate": {"id": f"visionrag-{stack}-{group}", "version": "1"},
            "amiType": "AL2023_x86_64_NVIDIA" if gpu else "AL2023_x86_64_STANDARD",
        }
        if gpu:
            ng["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
            ng["labels"] = {"nvidia.com/gpu.present": "true"}
        b.add(
            "aws:eks/nodeGroup:NodeGroup",
            f"visionrag-{stack}-{group}",
            ng,
            deps=[cluster, lt, *private],
            parent=cl,
            **prov,
        )

    b.add(
        "aws:eks/addon:Addon",
        f"visionrag-{stack}-vpc-cni",
        {
            "clusterName": f"visionrag-{stack}",
            "addonName": "vpc-cni",
            "addonVersion": "v1.20.0-eksbuild.1",
            "configurationValues": json.dumps({"enableNetworkPolicy": "true"}),
        },
        deps=[cluster],
        parent=cl,
        **prov,
    )
    oidc = f"oidc.eks.{REGION}.amazonaws.com/id/EXAMPLE"
    irsa = b.add(
        "aws:iam/role:Role",
        f"visionrag-{stack}-api",
        {
            "name": f"visionrag-{stack}-api",
            "assumeRolePolicy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc}"},
                            "Condition": {
                                "StringEquals": {
                                    f"{oidc}:sub": "system:serviceaccount:visionrag:api",
                                    f"{oidc}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            ),
        },
        parent=cl,
        **prov,
    )
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        f"visionrag-{stack}-api",
        {
            "role": f"visionrag-{stack}-api",
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "Pages",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": [f"arn:aws:s3:::visionrag-{stack}-pages/*"],
                        },
                        {"Sid": "Describe", "Effect": "Allow", "Action": ["ec2:DescribeSubnets"], "Resource": "*"},
                    ],
                }
            ),
        },
        deps=[irsa],
        parent=cl,
        **prov,
    )

    # ---- kubernetes
    b.add(
        "kubernetes:helm.sh/v3:Release",
        "nvidia-device-plugin",
        {
            "chart": "nvidia-device-plugin",
            "version": "0.17.1",
            "namespace": "visionrag-system",
            "repositoryOpts": {"repo": "https://nvidia.github.io/k8s-device-plugin"},
            "values": {
                "image": {"tag": "v0.17.1"},
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
                ],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "200m", "memory": "256Mi"},
                },
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": []}},
            },
        },
        provider=k8s,
    )
    wl = b.add("visionrag:infra:Workloads", "workloads", {})
    kp: dict[str, Any] = {"provider": k8s, "parent": wl}
    b.add(
        "kubernetes:core/v1:Namespace",
        "visionrag",
        {
            "metadata": {
                "name": "visionrag",
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            }
        },
        **kp,
    )
    b.add(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "default-deny",
        {
            "metadata": {"name": "default-deny", "namespace": "visionrag"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        **kp,
    )
    b.add(
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "gp3",
        {
            "metadata": {"name": "gp3-encrypted"},
            "provisioner": "ebs.csi.aws.com",
            "parameters": {"type": "gp3", "encrypted": "true", "kmsKeyId": kms_arn("ebs")},
        },
        **kp,
    )
    b.add(
        "kubernetes:core/v1:ConfigMap",
        "api-config",
        {
            "metadata": {"name": "api-config", "namespace": "visionrag"},
            "data": {"LOG_LEVEL": "info", "QDRANT_URL": "http://qdrant:6333"},
        },
        **kp,
    )
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/visionrag-%s{DIGEST}"
    workloads: list[tuple[str, str, float, dict[str, Any], bool, list[dict[str, Any]] | None]] = [
        ("Deployment", "api", 3.0, _container("api", image % "api"), False, None),
        ("Deployment", "worker", 2.0, _container("worker", image % "worker"), False, None),
        ("Deployment", "embedder", 1.0, _container("embedder", image % "embedder", gpu=True), True, None),
        (
            "StatefulSet",
            "qdrant",
            3.0,
            _container("qdrant", f"docker.io/qdrant/qdrant:v1.16.0{DIGEST}"),
            False,
            [
                {
                    "metadata": {"name": "storage"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "gp3-encrypted",
                        "resources": {"requests": {"storage": "20Gi" if stack == "dev" else "200Gi"}},
                    },
                }
            ],
        ),
    ]
    if stack != "dev":
        # The malware scanner (policies/rules/malware.py): clamd behind a Service on 3310, the api pointed at it.
        workloads.append(
            ("Deployment", "clamav", 2.0, _container("clamd", f"docker.io/clamav/clamav:1.4.6{DIGEST}"), False, None)
        )
        workloads[0][3]["env"] += [
            {"name": "CLAMD_HOST", "value": "clamav.visionrag.svc.cluster.local"},
            {"name": "CLAMD_PORT", "value": "3310"},
        ]
    if stack != "dev":
        _image_admission(b, image, [str(w[3]["image"]) for w in workloads], k8s, kp)
    for kind, name, count, container, gpu, claims in workloads:
        b.add(f"kubernetes:apps/v1:{kind}", name, _workload(kind, name, count, container, gpu=gpu, claims=claims), **kp)
        b.add(
            "kubernetes:core/v1:Service",
            name,
            {
                "metadata": {"name": name, "namespace": "visionrag"},
                "spec": {
                    "type": "ClusterIP",
                    "selector": {"app.kubernetes.io/name": name},
                    "ports": [{"port": 3310.0, "targetPort": 3310.0}]
                    if name == "clamav"
                    else [{"port": 80.0, "targetPort": "http"}],
                },
            },
            **kp,
        )
        if count > 1:
            b.add(
                "kubernetes:policy/v1:PodDisruptionBudget",
                name,
                {
                    "metadata": {"name": name, "namespace": "visionrag"},
                    "spec": {"maxUnavailable": 1.0, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
                },
                **kp,
            )
    b.add(
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "api",
        {
            "metadata": {"name": "api", "namespace": "visionrag"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                "minReplicas": 3.0,
                "maxReplicas": 10.0,
            },
        },
        **kp,
    )
    b.add(
        "kubernetes:batch/v1:CronJob",
        "qdrant-snapshots",
        {
            "metadata": {"name": "qdrant-snapshots", "namespace": "visionrag"},
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                **_pod_spec([_container("snapshot", image % "worker")]),
                                "restartPolicy": "OnFailure",
                            }
                        }
                    }
                },
            },
        },
        **kp,
    )
    return b.plan()


def _image_admission(b: PlanBuilder, image: str, images: list[str], k8s: Any, kp: dict[str, Any]) -> None:
    """Signed-image admission as infra/workloads/image_admission.py builds it (staging, prod): the app namespace
    opted in, the policy-controller release, CI's signature policy and the static pass for pinned third parties."""
    ns = find(b.plan(), "kubernetes:core/v1:Namespace", "visionrag")["inputs"]
    ns["metadata"]["labels"].update(INCLUDE_LABEL)
    settings = AdmissionSettings(
        repository_urls={i: (image % i).split("@")[0] for i in ("api", "worker", "embedder")},
        repository_arns={
            i: f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/visionrag-{i}" for i in ("api", "worker", "embedder")
        },
        signer=signer_identity("example-org/visionrag"),
    )
    chart, version, repo = CHARTS["policy-controller"]
    b.add(
        "kubernetes:helm.sh/v3:Release",
        "policy-controller",
        {
            "chart": chart,
            "version": version,
            "namespace": "visionrag-system",
            "repositoryOpts": {"repo": repo},
            "values": chart_values(settings, "policy-controller"),
        },
        provider=k8s,
    )
    globs = project_globs(settings.repository_urls)
    keyless = {
        "url": "https://fulcio.sigstore.dev",
        "identities": [{"issuer": settings.issuer, "subject": settings.signer}],
    }
    third_party = sorted({normalize(i) for i in images if not any(glob_matches(g, i) for g in globs)})
    for name, pattern, authority in (
        ("visionrag-ci-signed", globs, {"name": "ci-signature", "keyless": keyless}),
        ("visionrag-third-party-pinned", third_party, {"name": "reviewed-digest", "static": {"action": "pass"}}),
    ):
        b.add(
            "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy",
            name,
            {
                "metadata": {"name": name},
                "spec": {"mode": "enforce", "images": [{"glob": g} for g in pattern], "authorities": [authority]},
            },
            **kp,
        )


def find(plan: dict[str, Any], type_: str, name: str | None = None) -> dict[str, Any]:
    """The one resource of ``type_`` (whose name ends with ``name``) in ``plan``."""
    hits = [r for r in plan["resources"] if r["type"] == type_ and (name is None or r["name"].endswith(name))]
    if len(hits) != 1:
        raise LookupError(f"{len(hits)} resources of type {type_} named *{name}")
    return hits[0]


def find_all(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def fresh(plan: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(plan)
