"""Post-deploy verify against moto accounts: one compliant account, then one broken property at a time.

Each non-compliant case asserts the exact set of failed checks, so a check that passes everything (or fails
everything) cannot hide behind another. moto gaps are listed in docs/delivery.md.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks.verify import post_deploy as verify
from stacks.verify.checks import is_tls_only_statement

REGION = "us-east-1"
ROLES = ("pages", "snapshots", "audit", "models", "access-logs")


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    # One moto account for the module: building the compliant account is the slow part, and every case below
    # adds its own uniquely named broken resource instead of mutating shared ones.
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            mp.setenv(k, v)
        with mock_aws():
            yield


def tls_only_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


class Builder:
    """Makes one AWS resource at a time, compliant unless a knob says otherwise.

    The compliant account is built once per test; a non-compliant case adds ONE broken resource and points the
    corresponding output at it, so every other check still runs against the compliant parts.
    """

    def __init__(self) -> None:
        c = lambda svc: boto3.client(svc, region_name=REGION)  # noqa: E731
        self.kms, self.s3, self.ec2, self.eks = c("kms"), c("s3"), c("ec2"), c("eks")
        self.elbv2, self.acm, self.waf, self.ecr, self.sm = (
            c("elbv2"),
            c("acm"),
            c("wafv2"),
            c("ecr"),
            c("secretsmanager"),
        )
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")[
                "Subnet"
            ]["SubnetId"]
            for i, az in enumerate("ab")
        ]
        self.data_key = self.key("data")
        self.n = 0

    def _name(self, base: str) -> str:
        self.n += 1
        return f"{base}-{self.n}"

    def key(self, name: str, *, rotation: bool = True) -> str:
        arn = self.kms.create_key(Description=f"visionrag {name}")["KeyMetadata"]["Arn"]
        if rotation:
            self.kms.enable_key_rotation(KeyId=arn)
        return str(arn)

    def bucket(
        self,
        role: str,
        *,
        pab_off: tuple[str, ...] = (),
        public_policy: bool = False,
        policy: bool = True,
        sse: str = "kms",
        bucket_key: bool = True,
        versioning: str = "Enabled",
    ) -> str:
        bucket = self._name(f"visionrag-{role.lower()}")
        s3 = self.s3
        s3.create_bucket(Bucket=bucket)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                k: k not in pab_off
                for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            },
        )
        if role == "access-logs" or sse == "s3":
            rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        else:
            rule = {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": self.data_key},
                "BucketKeyEnabled": bucket_key,
            }
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
        doc = tls_only_policy(bucket)
        if public_policy:
            doc["Statement"].append(
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
            )
        if policy:
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
        return bucket

    def cluster(
        self,
        *,
        endpoint_public: bool = False,
        public_cidrs: tuple[str, ...] = ("203.0.113.0/24",),
        secrets_encryption: bool = True,
        log_types: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler"),
        http_tokens: str = "required",
        hop_limit: int = 1,
        gpu_without_template: bool = False,
    ) -> tuple[str, list[str]]:
        name = self._name("visionrag")
        self.eks.create_cluster(
            name=name,
            roleArn="arn:aws:iam::123456789012:role/visionrag-cluster",
            resourcesVpcConfig={
                "subnetIds": self.subnets,
                "endpointPrivateAccess": True,
                "endpointPublicAccess": endpoint_public,
                **({"publicAccessCidrs": list(public_cidrs)} if endpoint_public else {}),
            },
            encryptionConfig=(
                [{"resources": ["secrets"], "provider": {"keyArn": self.data_key}}] if secrets_encryption else []
            ),
            logging={"clusterLogging": [{"types": list(log_types), "enabled": True}]},
        )
        lt = self.ec2.create_launch_template(
            LaunchTemplateName=f"{name}-nodes",
            LaunchTemplateData={
                "MetadataOptions": {
                    "HttpTokens": http_tokens,
                    "HttpPutResponseHopLimit": hop_limit,
                    "HttpEndpoint": "enabled",
                }
            },
        )["LaunchTemplate"]
        groups = []
        for ng in ("system", "gpu"):
            extra: dict[str, Any] = {}
            if not (gpu_without_template and ng == "gpu"):
                extra["launchTemplate"] = {"id": lt["LaunchTemplateId"], "version": "1"}
            self.eks.create_nodegroup(
                clusterName=name,
                nodegroupName=ng,
                subnets=self.subnets,
                nodeRole="arn:aws:iam::123456789012:role/visionrag-nodes",
                **extra,
            )
            groups.append(ng)
        return name, groups

    def alb(
        self,
        *,
        tls_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06",
        http_forwards: bool = False,
        waf: bool = True,
    ) -> tuple[str, str]:
        name = self._name("visionrag-alb")
        sg = self.ec2.create_security_group(GroupName=name, Description="alb", VpcId=self.vpc)["GroupId"]
        alb = self.elbv2.create_load_balancer(Name=name, Subnets=self.subnets, SecurityGroups=[sg])["LoadBalancers"][0][
            "LoadBalancerArn"
        ]
        tg = self.elbv2.create_target_group(
            Name=f"{name}-api", Protocol="HTTP", Port=8000, VpcId=self.vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        cert = self.acm.request_certificate(DomainName="api.example.com", ValidationMethod="DNS")["CertificateArn"]
        self.elbv2.create_listener(
            LoadBalancerArn=alb,
            Protocol="HTTPS",
            Port=443,
            SslPolicy=tls_policy,
            Certificates=[{"CertificateArn": cert}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
        )
        http_action: dict[str, Any] = (
            {"Type": "forward", "TargetGroupArn": tg}
            if http_forwards
            else {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}
        )
        self.elbv2.create_listener(LoadBalancerArn=alb, Protocol="HTTP", Port=80, DefaultActions=[http_action])
        acl = self.waf.create_web_acl(
            Name=f"{name}-waf",
            Scope="REGIONAL",
            DefaultAction={"Allow": {}},
            VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "waf"},
            Rules=[],
        )["Summary"]["ARN"]
        if waf:
            self.waf.associate_web_acl(WebACLArn=acl, ResourceArn=alb)
        return alb, acl

    def repo(self, name: str, *, mutability: str = "IMMUTABLE", scan_on_push: bool = True) -> str:
        return str(
            self.ecr.create_repository(
                repositoryName=self._name(f"visionrag/{name}"),
                imageTagMutability=mutability,
                imageScanningConfiguration={"scanOnPush": scan_on_push},
            )["repository"]["repositoryUri"]
        )

    def secret(self, name: str, *, cmk: str | None) -> str:
        kwargs: dict[str, Any] = {"KmsKeyId": cmk} if cmk else {}
        # The stack exports secret NAMES (secretNames); describe_secret takes a name as well as an ARN.
        return str(self.sm.create_secret(Name=self._name(f"visionrag/{name}"), SecretString="x" * 32, **kwargs)["Name"])

    def compliant(self, tier: str = "prod", **cluster_knobs: Any) -> dict[str, Any]:
        secrets_key = self.key("secrets")
        cluster, groups = self.cluster(**cluster_knobs)
        alb, acl = self.alb()
        return {
            "region": REGION,
            "tier": tier,
            "clusterName": cluster,
            "nodeGroupNames": groups,
            "bucketNames": {role: self.bucket(role) for role in ROLES},
            "kmsKeyArns": {"data": self.data_key, "secrets": secrets_key},
            "albArn": alb,
            "albDnsName": "alb.example.com",
            "webAclArn": acl,
            "ecrRepositoryUrls": {n: self.repo(n) for n in ("api", "worker", "embedder")},
            "secretNames": {n: self.secret(n, cmk=secrets_key) for n in ("qdrantApiKey", "jwtSigningKey")},
        }


@pytest.fixture(scope="module")
def account(aws: None) -> tuple[Builder, dict[str, Any]]:
    b = Builder()
    return b, b.compliant()


@pytest.fixture(scope="module")
def session() -> Any:
    # One session for the module: botocore caches service models per session, which keeps each run fast.
    return boto3.session.Session(region_name=REGION)


def failed(outputs: dict[str, Any], session: Any, stack: str = "prod") -> set[tuple[str, str]]:
    return {(r.area, r.check) for r in verify.run_checks(outputs, stack, session=session) if not r.ok}


def test_compliant_account_passes_every_check(
    account: tuple[Builder, dict[str, Any]], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _, outputs = account
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))

    assert verify.main(["prod", "--outputs", str(path)]) == 0

    out = capsys.readouterr().out
    assert "FAIL" not in out
    rows = [line.split()[:2] for line in out.splitlines()[2:] if line.startswith("PASS")]
    # Every area was exercised, not skipped: 5 buckets x 5, 2 keys x 2, cluster 3, 2 node groups, ALB 4,
    # 3 repositories x 2, 2 secrets.
    assert {area for _, area in rows} == {"s3", "kms", "eks", "eks-nodegroup", "alb", "ecr", "secretsmanager"}
    assert len(rows) == 25 + 4 + 3 + 2 + 4 + 6 + 2


def _swap(outputs: dict[str, Any], key: str, sub: str | None, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(outputs))
    if sub is None:
        out[key] = value
    else:
        out[key][sub] = value
    return out


def _cluster(b: Builder, o: dict[str, Any], **knobs: Any) -> dict[str, Any]:
    name, groups = b.cluster(**knobs)
    return {**_swap(o, "clusterName", None, name), "nodeGroupNames": groups}


def _alb(b: Builder, o: dict[str, Any], **knobs: Any) -> dict[str, Any]:
    alb, acl = b.alb(**knobs)
    return {**_swap(o, "albArn", None, alb), "webAclArn": acl}


BREAKS: list[tuple[str, Callable[[Builder, dict[str, Any]], dict[str, Any]], set[tuple[str, str]]]] = [
    (
        "public access block partly off",
        lambda b, o: _swap(o, "bucketNames", "pages", b.bucket("pages", pab_off=("BlockPublicPolicy",))),
        {("s3", "public access block")},
    ),
    (
        "public bucket policy",
        lambda b, o: _swap(o, "bucketNames", "models", b.bucket("models", public_policy=True)),
        {("s3", "no public policy")},
    ),
    (
        "no bucket policy, so no TLS-only deny",
        lambda b, o: _swap(o, "bucketNames", "audit", b.bucket("audit", policy=False)),
        {("s3", "TLS-only policy")},
    ),
    (
        "SSE-S3 instead of KMS",
        lambda b, o: _swap(o, "bucketNames", "pages", b.bucket("pages", sse="s3")),
        {("s3", "SSE-KMS + bucket key")},
    ),
    (
        "KMS without bucket key",
        lambda b, o: _swap(o, "bucketNames", "snapshots", b.bucket("snapshots", bucket_key=False)),
        {("s3", "SSE-KMS + bucket key")},
    ),
    (
        "versioning suspended",
        lambda b, o: _swap(o, "bucketNames", "audit", b.bucket("audit", versioning="Suspended")),
        {("s3", "versioning")},
    ),
    (
        "KMS rotation off",
        lambda b, o: _swap(o, "kmsKeyArns", "data", b.key("data", rotation=False)),
        {("kms", "rotation")},
    ),
    ("public EKS endpoint in prod", lambda b, o: _cluster(b, o, endpoint_public=True), {("eks", "endpoint private")}),
    (
        "no secrets envelope encryption",
        lambda b, o: _cluster(b, o, secrets_encryption=False),
        {("eks", "secrets encryption")},
    ),
    (
        "audit log type off",
        lambda b, o: _cluster(b, o, log_types=("api", "authenticator")),
        {("eks", "control-plane audit logging")},
    ),
    ("IMDSv1 allowed", lambda b, o: _cluster(b, o, http_tokens="optional"), {("eks-nodegroup", "IMDSv2, hop limit 1")}),
    (
        "hop limit 2 lets pods reach the node role",
        lambda b, o: _cluster(b, o, hop_limit=2),
        {("eks-nodegroup", "IMDSv2, hop limit 1")},
    ),
    (
        "node group without launch template",
        lambda b, o: _cluster(b, o, gpu_without_template=True),
        {("eks-nodegroup", "IMDSv2, hop limit 1")},
    ),
    ("HTTP listener forwards plaintext", lambda b, o: _alb(b, o, http_forwards=True), {("alb", "HTTP redirect :80")}),
    (
        "TLS 1.0 listener policy",
        lambda b, o: _alb(b, o, tls_policy="ELBSecurityPolicy-2016-08"),
        {("alb", "TLS policy :443")},
    ),
    ("WAF not associated", lambda b, o: _alb(b, o, waf=False), {("alb", "WAF association")}),
    (
        "WAF association is another ACL",
        lambda b, o: {**o, "webAclArn": b.alb()[1]},
        {("alb", "WAF association")},
    ),
    (
        "mutable tags",
        lambda b, o: _swap(o, "ecrRepositoryUrls", "api", b.repo("api", mutability="MUTABLE")),
        {("ecr", "immutable tags")},
    ),
    (
        "scan on push off",
        lambda b, o: _swap(o, "ecrRepositoryUrls", "worker", b.repo("worker", scan_on_push=False)),
        {("ecr", "scan on push")},
    ),
    (
        "secret under the AWS-managed key",
        lambda b, o: _swap(o, "secretNames", "jwtSigningKey", b.secret("jwtSigningKey", cmk=None)),
        {("secretsmanager", "customer-managed KMS key")},
    ),
    (
        "secret under a key that is not the stack's",
        lambda b, o: _swap(o, "secretNames", "jwtSigningKey", b.secret("jwtSigningKey", cmk=b.key("stray"))),
        {("secretsmanager", "customer-managed KMS key")},
    ),
    (
        "bucket that does not exist",
        lambda b, o: _swap(o, "bucketNames", "models", "visionrag-gone"),
        {
            ("s3", "public access block"),
            ("s3", "no public policy"),
            ("s3", "SSE-KMS + bucket key"),
            ("s3", "versioning"),
            ("s3", "TLS-only policy"),
        },
    ),
    (
        "cluster that does not exist",
        lambda b, o: _swap(o, "clusterName", None, "gone"),
        {
            ("eks", "cluster readable"),
            ("eks-nodegroup", "IMDSv2, hop limit 1"),
        },
    ),
    (
        "missing output",
        lambda b, o: {k: v for k, v in o.items() if k != "albArn"},
        {("outputs", "present and well-formed")},
    ),
    (
        "bucket role missing from bucketNames",
        lambda b, o: {**o, "bucketNames": {k: v for k, v in o["bucketNames"].items() if k != "audit"}},
        {("outputs", "present and well-formed")},
    ),
]


@pytest.mark.parametrize(("case", "breaker", "expected"), BREAKS, ids=[b[0] for b in BREAKS])
def test_each_broken_property_fails_exactly_its_check(
    account: tuple[Builder, dict[str, Any]],
    session: Any,
    case: str,
    breaker: Callable[[Builder, dict[str, Any]], dict[str, Any]],
    expected: set[tuple[str, str]],
) -> None:
    b, outputs = account
    # The compliant account passing is asserted once, in test_compliant_account_passes_every_check.
    assert failed(breaker(b, outputs), session) == expected


def test_main_exits_1_and_names_each_failed_check(
    account: tuple[Builder, dict[str, Any]], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    b, outputs = account
    broken = _swap(outputs, "bucketNames", "pages", b.bucket("pages", versioning="Suspended", sse="s3"))
    broken = _swap(broken, "kmsKeyArns", "data", b.key("data", rotation=False))
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(broken))

    assert verify.main(["prod", "--outputs", str(path)]) == 1

    captured = capsys.readouterr()
    assert "3 of" in captured.err
    assert f"pages:{broken['bucketNames']['pages']}: versioning (Status=Suspended)" in captured.err
    assert "SSE-KMS + bucket key (SSEAlgorithm=AES256" in captured.err
    assert ": rotation (KeyRotationEnabled=False)" in captured.err
    assert captured.out.count("FAIL") == 3


@pytest.mark.parametrize(
    ("tier", "cidrs", "expected"),
    [
        ("dev", ("203.0.113.0/24",), set()),
        ("dev", ("0.0.0.0/0",), {("eks", "endpoint private")}),
        ("staging", ("203.0.113.0/24",), {("eks", "endpoint private")}),
    ],
)
def test_public_endpoint_is_a_dev_allowance_with_allow_listed_cidrs(
    account: tuple[Builder, dict[str, Any]],
    session: Any,
    tier: str,
    cidrs: tuple[str, ...],
    expected: set[tuple[str, str]],
) -> None:
    outputs = {**account[1], "tier": tier}
    outputs = _cluster(account[0], outputs, endpoint_public=True, public_cidrs=cidrs)
    assert failed(outputs, session, tier) == expected


def test_python_m_stacks_verify_dispatches_here(account: tuple[Builder, dict[str, Any]], tmp_path: Any) -> None:
    from stacks.cli import main as cli_main

    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**account[1], "albArn": account[1]["albArn"]}))
    assert cli_main(["verify", "prod", "--outputs", str(path)]) == 0
    path.write_text(json.dumps({k: v for k, v in account[1].items() if k != "clusterName"}))
    assert cli_main(["verify", "prod", "--outputs", str(path)]) == 1


def test_outputs_from_stdin(
    account: tuple[Builder, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, outputs = account
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(outputs)))
    assert verify.main(["prod", "--outputs", "-", "--json"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[: out.rindex("]") + 1])
    assert rows and all(set(r) == {"area", "resource", "check", "ok", "detail"} and r["ok"] for r in rows)


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "not JSON"), ("[1, 2]", "expected a JSON object")],
)
def test_unusable_outputs_exit_2(tmp_path: Any, capsys: pytest.CaptureFixture[str], content: str, message: str) -> None:
    path = tmp_path / "o.json"
    path.write_text(content)
    assert verify.main(["staging", "--outputs", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_missing_outputs_file_exit_2(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["dev", "--outputs", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_without_pulumi_cli_the_error_says_what_to_pass(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    assert verify.main(["dev"]) == 2
    assert "--outputs" in capsys.readouterr().err


def test_unknown_stack_is_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        verify.main(["qa", "--outputs", "-"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s, True),
        (lambda s: {**s, "Effect": "Allow"}, False),
        (lambda s: {**s, "Principal": {"AWS": "arn:aws:iam::1:root"}}, False),
        (lambda s: {**s, "Action": "s3:GetObject"}, False),
        (lambda s: {**s, "Resource": "arn:aws:s3:::b/*"}, False),
        (lambda s: {**s, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, False),
        (lambda s: {**s, "Condition": {"Bool": {"aws:SecureTransport": False}}}, True),
        (lambda s: {**s, "Principal": {"AWS": "*"}, "Action": ["s3:*"]}, True),
    ],
)
def test_tls_only_statement(mutate: Callable[[dict[str, Any]], dict[str, Any]], expected: bool) -> None:
    stmt = tls_only_policy("b")["Statement"][0]
    assert is_tls_only_statement(mutate(stmt), "b") is expected


def test_table_names_each_failure() -> None:
    table = verify.render_table(
        [
            verify.CheckResult("s3", "pages:b", "versioning", False, "Status=Suspended"),
            verify.CheckResult("kms", "data:k", "rotation", True, "KeyRotationEnabled=True"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["RESULT", "AREA", "RESOURCE", "CHECK", "DETAIL"]
    assert lines[2].startswith("FAIL") and "versioning" in lines[2] and "Status=Suspended" in lines[2]
    assert lines[3].startswith("PASS")


def test_registry_enhanced_scanning_stands_in_for_scan_on_push(
    account: tuple[Builder, dict[str, Any]], session: Any
) -> None:
    b, outputs = account
    unscanned = b.repo("worker", scan_on_push=False)
    broken = _swap(outputs, "ecrRepositoryUrls", "worker", unscanned)
    assert failed(broken, session) == {("ecr", "scan on push")}
    rule = {
        "scanFrequency": "CONTINUOUS_SCAN",
        "repositoryFilters": [{"filter": "visionrag*", "filterType": "WILDCARD"}],
    }
    b.ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[rule])
    try:
        assert failed(broken, session) == set()
        other = {**rule, "repositoryFilters": [{"filter": "other*", "filterType": "WILDCARD"}]}
        b.ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[other])
        assert failed(broken, session) == {("ecr", "scan on push")}
    finally:
        b.ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
