"""The checks behind `python -m stacks preflight`: what the program cannot create and what must hold before `up`.

One function per concern, each taking its boto3 client(s) and returning verify's CheckResult rows. A check that
cannot read its evidence fails (never passes by default). What cannot be judged from here is reported as passed
with a detail starting NOT_CHECKED (advisory), never silently dropped: an image in a non-ECR registry, a
delegation when no resolver is available, anything that only exists after the first `up` (stack buckets, secrets,
the cluster).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.service_linked_roles import REQUIRED_SERVICES, ROLE_NAMES
from stacks.config import StackConfig
from stacks.config.registry import pull_problem
from stacks.verify.checks import CheckResult

NOT_CHECKED = "not checked (advisory)"
# Service Quotas: "Running On-Demand G and VT instances", counted in vCPUs (EC2 On-Demand instance quotas).
GPU_VCPU_QUOTA = ("ec2", "L-DB2E81BA")
# Which On-Demand quota an instance family counts against; the GPU node group may only use these (config).
GPU_QUOTA_FAMILIES = {"g5": GPU_VCPU_QUOTA, "g6": GPU_VCPU_QUOTA, "g6e": GPU_VCPU_QUOTA}
_P_INSTANCES_QUOTA = ("ec2", "L-417A185B")  # "Running On-Demand P instances"
_ECR_REF = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^@:]+)"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64})|:(?P<tag>[\w.-]+))$"
)

Resolver = Callable[[str], Sequence[str] | None]  # zone name -> its delegated NS names (None: cannot resolve)
Connector = Callable[[str, int, float], None]  # host, port, timeout; raises OSError when unreachable


def _err(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _ns(names: Sequence[str]) -> set[str]:
    return {n.lower().rstrip(".") for n in names}


def dig_resolver(zone: str) -> Sequence[str] | None:
    """The public delegation of `zone` as `dig +short NS` sees it; None when dig is missing or finds nothing."""
    dig = shutil.which("dig")
    if dig is None:
        return None
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [dig, "+short", "+time=3", "+tries=1", "NS", zone], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    return names or None


def tcp_connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


# ---- hosted zone ----------------------------------------------------------------------------------------
def check_hosted_zone(route53: Any, zone_id: str, domain: str, resolver: Resolver) -> list[CheckResult]:
    out: list[CheckResult] = []

    def add(check: str, ok: bool, detail: str) -> None:
        out.append(CheckResult("route53", zone_id, check, ok, detail))

    try:
        zone = route53.get_hosted_zone(Id=zone_id)
    except (ClientError, BotoCoreError) as exc:
        add("hosted zone exists", False, f"cannot read: {_err(exc)}")
        return out
    name = str(zone["HostedZone"]["Name"]).rstrip(".").lower()
    covers = domain == name or domain.endswith(f".{name}")
    add("hosted zone exists", True, f"{name}")
    add("zone covers the domain", covers, f"edge.domain {domain!r} {'is in' if covers else 'is NOT in'} zone {name!r}")
    private = bool(zone["HostedZone"].get("Config", {}).get("PrivateZone"))
    add("zone is public", not private, "private zones cannot answer ACM validation or clients")
    assigned = _ns(zone.get("DelegationSet", {}).get("NameServers", []))
    try:
        sets = route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=f"{name}.", StartRecordType="NS")
        apex = [
            r for r in sets["ResourceRecordSets"] if r["Type"] == "NS" and str(r["Name"]).rstrip(".").lower() == name
        ]
        in_zone = _ns([v["Value"] for r in apex for v in r.get("ResourceRecords", [])])
        add(
            "apex NS records are the zone's name servers",
            bool(assigned) and in_zone == assigned,
            f"NS record {sorted(in_zone)}; delegation set {sorted(assigned)}",
        )
    except (ClientError, BotoCoreError) as exc:
        add("apex NS records are the zone's name servers", False, f"cannot read: {_err(exc)}")
    public = resolver(name)
    if public is None:
        add("parent delegates to the zone", True, f"{NOT_CHECKED}: no resolver answered NS {name}")
    else:
        delegated = _ns(public)
        add(
            "parent delegates to the zone",
            delegated == assigned,
            f"public NS {sorted(delegated)}; zone's {sorted(assigned)}"
            + ("" if delegated == assigned else ": update the NS records at the registrar / parent zone"),
        )
    return out


# ---- images ---------------------------------------------------------------------------------------------
def check_images(ecr_for_region: Callable[[str], Any], images: Mapping[str, str]) -> list[CheckResult]:
    out: list[CheckResult] = []
    for workload, ref in sorted(images.items()):
        m = _ECR_REF.match(ref)
        if m is None:
            registry = ref.split("/", 1)[0]
            out.append(
                CheckResult(
                    "image",
                    workload,
                    "image exists in its registry",
                    True,
                    f"{NOT_CHECKED}: {ref} ({registry} is not ECR)",
                )
            )
            continue
        image_id = {"imageDigest": m["digest"]} if m["digest"] else {"imageTag": m["tag"]}
        try:
            ecr_for_region(m["region"]).describe_images(
                registryId=m["account"], repositoryName=m["repo"], imageIds=[image_id]
            )
            ok, detail = True, ref
        except ClientError as exc:
            ok, detail = False, f"{ref}: {_err(exc)} (was it pushed to this account's repository?)"
        except BotoCoreError as exc:
            ok, detail = False, f"{ref}: cannot read: {_err(exc)}"
        out.append(CheckResult("image", workload, "image exists in its registry", ok, detail))
    return out


# ---- GPU quota ------------------------------------------------------------------------------------------
def check_gpu_quota(quotas: Any, ec2: Any, instance_types: Sequence[str], max_nodes: int) -> list[CheckResult]:
    resource = ",".join(instance_types)
    check = "On-Demand vCPU quota covers the GPU node group's maxSize"
    try:
        described = ec2.describe_instance_types(InstanceTypes=list(instance_types))["InstanceTypes"]
        vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in described}
    except (ClientError, BotoCoreError) as exc:
        return [CheckResult("quota", resource, check, False, f"cannot read instance types: {_err(exc)}")]
    needed: dict[tuple[str, str], int] = {}
    for t in instance_types:
        quota = GPU_QUOTA_FAMILIES.get(t.split(".", 1)[0], _P_INSTANCES_QUOTA)
        # The group may scale to maxSize nodes of its largest type: that is the worst case the quota must hold.
        needed[quota] = max(needed.get(quota, 0), max_nodes * vcpus[t])
    out = []
    for (service, code), need in sorted(needed.items()):
        try:
            value = float(quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
        except (ClientError, BotoCoreError) as exc:
            out.append(CheckResult("quota", f"{service}/{code}", check, False, f"cannot read: {_err(exc)}"))
            continue
        out.append(
            CheckResult(
                "quota",
                f"{service}/{code}",
                check,
                value >= need,
                f"{need} vCPUs needed ({max_nodes} x {resource}), quota {value:g}"
                + ("" if value >= need else ": request an increase in Service Quotas"),
            )
        )
    return out


# ---- model weights --------------------------------------------------------------------------------------
def check_model_weights(s3: Any, bucket: str, model: str) -> list[CheckResult]:
    prefix = model.strip("/") + "/"  # exactly what the embedder's model-sync init container lists
    check = "model weights uploaded"
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as exc:
        if _code(exc) == "NoSuchBucket":
            return [CheckResult("s3", bucket, check, True, f"{NOT_CHECKED}: bucket not created yet (first deploy)")]
        return [CheckResult("s3", bucket, check, False, f"cannot read: {_err(exc)}")]
    except BotoCoreError as exc:
        return [CheckResult("s3", bucket, check, False, f"cannot read: {_err(exc)}")]
    ok = int(listed.get("KeyCount", 0)) > 0
    detail = f"s3://{bucket}/{prefix}" + ("" if ok else " is empty: upload the weights (docs/runbooks)")
    return [CheckResult("s3", bucket, check, ok, detail)]


# ---- service-linked roles ---------------------------------------------------------------------------------
def check_service_linked_roles(iam: Any, *, create: bool, project: str, tier: str) -> list[CheckResult]:
    """`cluster.createServiceLinkedRoles` matches the account: IAM refuses to create a service-linked role that
    exists ("has been taken in this account"), and a looked-up role that does not exist fails the preview.

    A role this stack created on an earlier `up` carries its `project`/`tier` tags: that one is fine to keep creating.
    Another stack's (say dev's, in a shared account) or one AWS made on first use is not.
    """
    out: list[CheckResult] = []
    for service in REQUIRED_SERVICES:
        name = ROLE_NAMES[service]
        check = "service-linked role matches cluster.createServiceLinkedRoles"
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                out.append(CheckResult("iam", name, check, False, f"cannot read: {_err(exc)}"))
            elif create:
                out.append(CheckResult("iam", name, check, True, "absent: the stack creates it before the key policy"))
            else:
                detail = "absent, but createServiceLinkedRoles is false: set it true (a fresh account)"
                out.append(CheckResult("iam", name, check, False, detail))
            continue
        except BotoCoreError as exc:
            out.append(CheckResult("iam", name, check, False, f"cannot read: {_err(exc)}"))
            continue
        tags = {t["Key"]: t["Value"] for t in role.get("Tags", [])}
        ours = tags.get("project") == project and tags.get("tier") == tier
        if not create:
            out.append(CheckResult("iam", name, check, True, "present; looked up by the stack"))
        elif ours:
            out.append(CheckResult("iam", name, check, True, f"present, created by this stack ({project}/{tier})"))
        else:
            owner = f"{tags['project']}/{tags['tier']}" if {"project", "tier"} <= tags.keys() else "AWS or another tool"
            detail = (
                f"present (made by {owner}): IAM refuses a second; set cluster.createServiceLinkedRoles false and list "
                f"{service} in the pack config's preexistingServiceLinkedRoles"
            )
            out.append(CheckResult("iam", name, check, False, detail))
    return out


# ---- secrets --------------------------------------------------------------------------------------------
def check_secrets(sm: Any, name_prefix: str, required: Sequence[str]) -> list[CheckResult]:
    """Every `<prefix>/<key>` secret of the stack has an AWSCURRENT version; each `required` key exists."""
    out: list[CheckResult] = []
    try:
        found: dict[str, str] = {}
        for page in sm.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [f"{name_prefix}/"]}]):
            for s in page["SecretList"]:
                if str(s["Name"]).startswith(f"{name_prefix}/"):
                    found[str(s["Name"])[len(name_prefix) + 1 :]] = str(s["ARN"])
    except (ClientError, BotoCoreError) as exc:
        return [
            CheckResult("secretsmanager", f"{name_prefix}/*", "secrets readable", False, f"cannot read: {_err(exc)}")
        ]
    if not found:
        return [
            CheckResult(
                "secretsmanager",
                f"{name_prefix}/*",
                "secrets have a current value",
                True,
                f"{NOT_CHECKED}: none created yet (first deploy)",
            )
        ]
    for key in sorted(set(found) | set(required)):
        name = f"{name_prefix}/{key}"
        if key not in found:
            out.append(CheckResult("secretsmanager", name, "secret has a current value", False, "missing"))
            continue
        try:
            stages = sm.describe_secret(SecretId=found[key]).get("VersionIdsToStages", {})
            ok = any("AWSCURRENT" in s for s in stages.values())
            detail = "AWSCURRENT set" if ok else "no AWSCURRENT version: the value was never set"
        except (ClientError, BotoCoreError) as exc:
            ok, detail = False, f"cannot read: {_err(exc)}"
        out.append(CheckResult("secretsmanager", name, "secret has a current value", ok, detail))
    return out


# ---- shared registry ------------------------------------------------------------------------------------
def check_registry_pull(
    account: str, stack: str, registry_account: str, owner: Callable[[], tuple[str, StackConfig] | None]
) -> list[CheckResult]:
    """The account this stack deploys to (the caller's) may pull from the shared registry: it is the registry's
    account, or the owner stack's `registry.pullAccountIds` lists it (docs/delivery.md, "Registry model").
    `owner()`: the committed owner stack and its config (read only when the accounts differ)."""
    check = "this account may pull from the shared registry"
    if account == registry_account:
        return [CheckResult("registry", registry_account, check, True, "same account: the node role's IAM decides")]
    found = owner()
    if found is None:
        why = (
            f"registry.owner: no committed Pulumi.<stack>.yaml sets it, so nothing grants account {account} pulls "
            f"from {registry_account}"
        )
        return [CheckResult("registry", registry_account, check, False, why)]
    owner_stack, owner_cfg = found
    problem = pull_problem(account, "the caller identity", stack, owner_stack, owner_cfg)
    detail = problem or f"{account} is in registry.pullAccountIds of Pulumi.{owner_stack}.yaml"
    return [CheckResult("registry", registry_account, check, problem is None, detail)]


# ---- cluster endpoint -----------------------------------------------------------------------------------
def check_endpoint_reachable(eks: Any, cluster: str, connect: Connector, timeout: float = 5.0) -> list[CheckResult]:
    check = "deployer reaches the cluster endpoint (TCP 443)"
    try:
        endpoint = str(eks.describe_cluster(name=cluster)["cluster"].get("endpoint") or "")
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return [CheckResult("eks", cluster, check, True, f"{NOT_CHECKED}: cluster not created yet (first deploy)")]
        return [CheckResult("eks", cluster, check, False, f"cannot read: {_err(exc)}")]
    except BotoCoreError as exc:
        return [CheckResult("eks", cluster, check, False, f"cannot read: {_err(exc)}")]
    host = endpoint.removeprefix("https://").split("/", 1)[0]
    if not host:
        return [CheckResult("eks", cluster, check, False, "the cluster has no endpoint yet")]
    try:
        connect(host, 443, timeout)
    except OSError as exc:
        return [
            CheckResult(
                "eks",
                cluster,
                check,
                False,
                f"{host}:443 unreachable ({exc}): run inside the VPC (the CodeBuild runner) or an allow-listed CIDR",
            )
        ]
    return [CheckResult("eks", cluster, check, True, f"{host}:443")]
