"""The live-account checks behind `python -m stacks verify`: one function per AWS area, each returning results.

Every check reads the real API (boto3) and judges what AWS says is deployed, not what the program asked for:
a drifted console edit, a failed provider update or a missing sibling resource shows up here even though the
preview was clean. A check that cannot read its evidence (AccessDenied, NoSuch...) fails; it never passes by
default.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# TLS 1.2+ listener policies with forward secrecy only (the ELB predefined names; TLS13-* also allow 1.2).
ALLOWED_TLS_POLICIES = frozenset(
    {
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    }
)
# The control-plane log types the checklist asks for; audit is the one an incident review cannot do without.
REQUIRED_EKS_LOG_TYPES = frozenset({"api", "audit", "authenticator"})
# S3 server access logs and ALB access logs can only be delivered to an SSE-S3 bucket, so that one bucket is
# judged against AES256; every other bucket must be SSE-KMS with a bucket key.
SSE_S3_BUCKET_ROLES = frozenset({"access-logs"})
# Names AWS gives the service-default keys; a secret under one of them is not under our CMK.
_DEFAULT_KEY_ALIASES = ("alias/aws/secretsmanager", "aws/secretsmanager")


@dataclass(frozen=True)
class CheckResult:
    area: str
    resource: str
    check: str
    ok: bool
    detail: str


ClientFactory = Callable[[str], Any]


def _err(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


class _Recorder:
    """Collects results; `guard` turns an API failure into a failed check instead of a crash."""

    def __init__(self, area: str, resource: str) -> None:
        self.area = area
        self.resource = resource
        self.results: list[CheckResult] = []

    def add(self, check: str, ok: bool, detail: str) -> None:
        self.results.append(CheckResult(self.area, self.resource, check, ok, detail))

    def guard(self, check: str, fn: Callable[[], tuple[bool, str]]) -> None:
        try:
            ok, detail = fn()
        except (ClientError, BotoCoreError) as exc:
            ok, detail = False, f"cannot read: {_err(exc)}"
        self.add(check, ok, detail)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list | tuple) else [v]


def _principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return "*" in _as_list(principal.get("AWS"))
    return False


def is_tls_only_statement(stmt: Mapping[str, Any], bucket: str) -> bool:
    """A Deny for everyone on s3:* over the bucket and its objects when aws:SecureTransport is false."""
    if stmt.get("Effect") != "Deny" or not _principal_is_everyone(stmt.get("Principal")):
        return False
    if not {"s3:*", "*"} & set(_as_list(stmt.get("Action"))):
        return False
    resources = set(_as_list(stmt.get("Resource")))
    covers = "*" in resources or {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"} <= resources
    if not covers:
        return False
    cond = stmt.get("Condition", {}).get("Bool", {})
    values = [str(v).lower() for v in _as_list(cond.get("aws:SecureTransport"))]
    return values == ["false"]


def check_bucket(s3: Any, role: str, bucket: str) -> list[CheckResult]:
    rec = _Recorder("s3", f"{role}:{bucket}")

    def public_access_block() -> tuple[bool, str]:
        try:
            cfg = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except ClientError as exc:
            if _code(exc) == "NoSuchPublicAccessBlockConfiguration":
                return False, "no public access block configured"
            raise
        off = sorted(
            k
            for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            if not cfg.get(k)
        )
        return (not off, "all four settings on" if not off else f"off: {', '.join(off)}")

    def no_public_policy() -> tuple[bool, str]:
        try:
            status = s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]
        except ClientError as exc:
            if _code(exc) == "NoSuchBucketPolicy":
                return True, "no bucket policy"
            raise
        public = bool(status.get("IsPublic"))
        return (not public, "policy is public" if public else "policy is not public")

    def sse() -> tuple[bool, str]:
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as exc:
            if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                return False, "no default encryption configured"
            raise
        rule = rules[0] if rules else {}
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        algo = default.get("SSEAlgorithm")
        if role in SSE_S3_BUCKET_ROLES:
            return (algo == "AES256", f"SSEAlgorithm={algo} (log delivery needs AES256)")
        key = default.get("KMSMasterKeyID")
        bucket_key = bool(rule.get("BucketKeyEnabled"))
        ok = algo in ("aws:kms", "aws:kms:dsse") and bool(key) and bucket_key
        return ok, f"SSEAlgorithm={algo} KMSMasterKeyID={'set' if key else 'unset'} BucketKeyEnabled={bucket_key}"

    def versioning() -> tuple[bool, str]:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "Disabled")
        return status == "Enabled", f"Status={status}"

    def tls_only() -> tuple[bool, str]:
        try:
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        except ClientError as exc:
            if _code(exc) == "NoSuchBucketPolicy":
                return False, "no bucket policy, so no aws:SecureTransport deny"
            raise
        found = any(is_tls_only_statement(s, bucket) for s in _as_list(policy.get("Statement")))
        return found, "Deny s3:* when aws:SecureTransport=false" if found else "no TLS-only deny statement"

    rec.guard("public access block", public_access_block)
    rec.guard("no public policy", no_public_policy)
    rec.guard("SSE-S3 (log bucket)" if role in SSE_S3_BUCKET_ROLES else "SSE-KMS + bucket key", sse)
    rec.guard("versioning", versioning)
    rec.guard("TLS-only policy", tls_only)
    return rec.results


def check_kms_key(kms: Any, name: str, key_arn: str) -> list[CheckResult]:
    rec = _Recorder("kms", f"{name}:{key_arn.rsplit('/', 1)[-1]}")

    def enabled() -> tuple[bool, str]:
        meta = kms.describe_key(KeyId=key_arn)["KeyMetadata"]
        return meta.get("KeyState") == "Enabled", f"KeyState={meta.get('KeyState')}"

    def rotation() -> tuple[bool, str]:
        on = bool(kms.get_key_rotation_status(KeyId=key_arn).get("KeyRotationEnabled"))
        return on, f"KeyRotationEnabled={on}"

    rec.guard("key enabled", enabled)
    rec.guard("rotation", rotation)
    return rec.results


def check_cluster(eks: Any, cluster: str, *, allow_public_endpoint: bool) -> list[CheckResult]:
    rec = _Recorder("eks", cluster)
    try:
        info = eks.describe_cluster(name=cluster)["cluster"]
    except (ClientError, BotoCoreError) as exc:
        rec.add("cluster readable", False, f"cannot read: {_err(exc)}")
        return rec.results

    vpc = info.get("resourcesVpcConfig", {})
    private = bool(vpc.get("endpointPrivateAccess"))
    public = bool(vpc.get("endpointPublicAccess"))
    cidrs = list(vpc.get("publicAccessCidrs") or [])
    if not private:
        rec.add("endpoint private", False, "endpointPrivateAccess=false")
    elif not public:
        rec.add("endpoint private", True, "private only")
    elif not allow_public_endpoint:
        rec.add("endpoint private", False, f"endpointPublicAccess=true (cidrs {cidrs}) in a hardened tier")
    elif not cidrs or "0.0.0.0/0" in cidrs:
        rec.add("endpoint private", False, f"public endpoint open to the internet (cidrs {cidrs or 'default'})")
    else:
        rec.add("endpoint private", True, f"private + public allow-listed {cidrs}")

    enc = [e for e in info.get("encryptionConfig") or [] if "secrets" in (e.get("resources") or [])]
    key = enc[0].get("provider", {}).get("keyArn") if enc else None
    rec.add("secrets encryption", bool(key), f"KMS key {key}" if key else "no envelope encryption of secrets")

    enabled: set[str] = set()
    for entry in (info.get("logging") or {}).get("clusterLogging") or []:
        if entry.get("enabled"):
            enabled.update(entry.get("types") or [])
    missing = sorted(REQUIRED_EKS_LOG_TYPES - enabled)
    rec.add(
        "control-plane audit logging",
        not missing,
        f"enabled {sorted(enabled)}" if not missing else f"missing {missing}",
    )
    return rec.results


def check_node_group(eks: Any, ec2: Any, cluster: str, nodegroup: str) -> list[CheckResult]:
    rec = _Recorder("eks-nodegroup", f"{cluster}/{nodegroup}")

    def imds() -> tuple[bool, str]:
        ng = eks.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup)["nodegroup"]
        lt = ng.get("launchTemplate") or {}
        if not lt.get("id") and not lt.get("name"):
            return False, "no launch template, so IMDS settings are the AMI defaults"
        ref = {"LaunchTemplateId": lt["id"]} if lt.get("id") else {"LaunchTemplateName": lt["name"]}
        version = str(lt.get("version") or "$Default")
        versions = ec2.describe_launch_template_versions(**ref, Versions=[version])["LaunchTemplateVersions"]
        if not versions:
            return False, f"launch template version {version} not found"
        meta = versions[0].get("LaunchTemplateData", {}).get("MetadataOptions", {})
        tokens, hops = meta.get("HttpTokens"), meta.get("HttpPutResponseHopLimit")
        ok = tokens == "required" and hops == 1
        return ok, f"HttpTokens={tokens} HttpPutResponseHopLimit={hops}"

    rec.guard("IMDSv2, hop limit 1", imds)
    return rec.results


def check_load_balancer(elbv2: Any, wafv2: Any, alb_arn: str, web_acl_arn: str | None) -> list[CheckResult]:
    rec = _Recorder("alb", alb_arn.split("loadbalancer/", 1)[-1])

    def listeners() -> None:
        found = elbv2.describe_listeners(LoadBalancerArn=alb_arn)["Listeners"]
        https = [x for x in found if x.get("Protocol") == "HTTPS"]
        rec.add("HTTPS listener", bool(https), f"{len(https)} HTTPS listener(s)")
        for lst in https:
            policy = lst.get("SslPolicy")
            rec.add(f"TLS policy :{lst.get('Port')}", policy in ALLOWED_TLS_POLICIES, f"SslPolicy={policy}")
        for lst in found:
            if lst.get("Protocol") == "HTTPS":
                continue
            actions = lst.get("DefaultActions") or []
            redirect = [a for a in actions if a.get("Type") == "redirect"]
            cfg = redirect[0].get("RedirectConfig", {}) if redirect else {}
            ok = (
                len(actions) == 1
                and bool(redirect)
                and cfg.get("Protocol") == "HTTPS"
                and cfg.get("StatusCode") == "HTTP_301"
            )
            detail = (
                f"redirect to HTTPS ({cfg.get('StatusCode')})"
                if ok
                else f"{lst.get('Protocol')} listener does {[a.get('Type') for a in actions]}, not a 301 to HTTPS"
            )
            rec.add(f"HTTP redirect :{lst.get('Port')}", ok, detail)

    try:
        listeners()
    except (ClientError, BotoCoreError) as exc:
        rec.add("listeners readable", False, f"cannot read: {_err(exc)}")

    def waf() -> tuple[bool, str]:
        acl = wafv2.get_web_acl_for_resource(ResourceArn=alb_arn).get("WebACL")
        if not acl:
            return False, "no web ACL associated"
        if web_acl_arn and acl.get("ARN") != web_acl_arn:
            return False, f"associated {acl.get('ARN')}, stack exports {web_acl_arn}"
        return True, f"web ACL {acl.get('Name')}"

    rec.guard("WAF association", waf)
    return rec.results


def check_repository(
    ecr: Any, name: str, repository: str, registry_scan: Mapping[str, Any] | None
) -> list[CheckResult]:
    rec = _Recorder("ecr", f"{name}:{repository}")
    try:
        repo = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    except (ClientError, BotoCoreError) as exc:
        rec.add("repository readable", False, f"cannot read: {_err(exc)}")
        return rec.results
    mutability = repo.get("imageTagMutability")
    rec.add("immutable tags", mutability == "IMMUTABLE", f"imageTagMutability={mutability}")
    on_push = bool((repo.get("imageScanningConfiguration") or {}).get("scanOnPush"))
    enhanced = _registry_scans(registry_scan, repository)
    rec.add(
        "scan on push",
        on_push or enhanced,
        "scanOnPush=true" if on_push else ("registry ENHANCED scanning" if enhanced else "no image scanning"),
    )
    return rec.results


def _registry_scans(cfg: Mapping[str, Any] | None, repository: str) -> bool:
    if not cfg or cfg.get("scanType") != "ENHANCED":
        return False
    for rule in cfg.get("rules") or []:
        for flt in rule.get("repositoryFilters") or []:
            pattern = str(flt.get("filter", ""))
            if (
                pattern == "*"
                or (pattern.endswith("*") and repository.startswith(pattern[:-1]))
                or pattern == repository
            ):
                return True
    return False


def check_secret(sm: Any, name: str, secret_id: str, cmk_arns: Iterable[str]) -> list[CheckResult]:
    rec = _Recorder("secretsmanager", f"{name}")
    cmks = set(cmk_arns)

    def kms_key() -> tuple[bool, str]:
        key = sm.describe_secret(SecretId=secret_id).get("KmsKeyId")
        if not key or key in _DEFAULT_KEY_ALIASES:
            return False, "encrypted with the AWS-managed default key"
        if cmks and key not in cmks and not any(arn.endswith(f"/{key}") for arn in cmks):
            return False, f"KmsKeyId {key} is not one of the stack's keys"
        return True, f"KmsKeyId {key}"

    rec.guard("customer-managed KMS key", kms_key)
    return rec.results
