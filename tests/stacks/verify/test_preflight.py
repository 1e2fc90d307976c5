"""Preflight against a moto account: one world where staging may deploy, then one broken fact at a time.

Each broken case asserts the exact set of failed checks, so a check that passes everything (or fails everything)
cannot hide behind another. Service Quotas is answered by botocore's Stubber (moto 5.2 has no EC2 quotas): the
Stubber still validates the request and the response against the real service model. DNS and TCP are the two
pluggable boundaries (a fake resolver, a fake connector): no test touches the network.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from stacks import cli
from stacks.config import ConfigError, StackConfig
from stacks.verify import preflight
from stacks.verify.checks import CheckResult
from stacks.verify.preflight_checks import GPU_VCPU_QUOTA, NOT_CHECKED, check_service_linked_roles

REGION = "us-east-1"
ACCOUNT = "123456789012"
MODEL_FILE = "vidore/colpali-v1.3-hf/model.safetensors"
RUN_PREFLIGHT: Callable[..., list[CheckResult]] = preflight.run_preflight  # before any test patches it
QDRANT = "docker.io/qdrant/qdrant@sha256:" + "a" * 64


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield


@dataclass
class World:
    """A staging account where every preflight check holds; tests break one fact and re-run."""

    cfg: StackConfig
    values: dict[str, Any]
    zone_ns: list[str]
    quota_vcpus: float = 64.0
    public_ns: list[str] | None = None
    reachable: bool = True
    connected: list[tuple[str, int]] = field(default_factory=list)

    def client(self, service: str, region: str | None = None) -> Any:
        c = boto3.client(service, region_name=region or REGION)
        if service == "service-quotas":
            stub = Stubber(c)
            service_code, quota_code = GPU_VCPU_QUOTA
            stub.add_response(
                "get_service_quota",
                {"Quota": {"ServiceCode": service_code, "QuotaCode": quota_code, "Value": self.quota_vcpus}},
                {"ServiceCode": service_code, "QuotaCode": quota_code},
            )
            stub.activate()
        return c

    def resolver(self, zone: str) -> list[str] | None:
        return self.public_ns

    def connect(self, host: str, port: int, timeout: float) -> None:
        self.connected.append((host, port))
        if not self.reachable:
            raise OSError("timed out")

    def run(self) -> list[CheckResult]:
        return preflight.run_preflight(
            self.cfg, self.values, client=self.client, resolver=self.resolver, connect=self.connect
        )


def _push(ecr: Any, repo: str, tag: str) -> str:
    ecr.create_repository(repositoryName=repo)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "tag": tag})
    image = ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag)["image"]
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repo}@{image['imageId']['imageDigest']}"


@pytest.fixture
def world(aws: None) -> World:
    cfg, values = preflight.load_config("staging")
    r53 = boto3.client("route53")
    zone = r53.create_hosted_zone(Name="visionrag.example.com", CallerReference="preflight")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    ns = list(zone["DelegationSet"]["NameServers"])
    ecr = boto3.client("ecr")
    refs = {n: _push(ecr, f"visionrag-{n}", "1.0.0") for n in ("api", "worker", "embedder", "frontend")}
    refs.update(snapshots=refs["worker"], qdrant=QDRANT)
    w = cfg.workloads
    workloads = w.model_copy(
        update={n: getattr(w, n).model_copy(update={"image": ref}) for n, ref in refs.items() if getattr(w, n)}
    )
    edge = cfg.edge.model_copy(update={"hosted_zone_id": zone_id})
    cfg = cfg.model_copy(update={"workloads": workloads, "edge": edge})
    s3 = boto3.client("s3")
    models = f"visionrag-staging-{ACCOUNT}-{REGION}-models"
    s3.create_bucket(Bucket=models)
    s3.put_object(Bucket=models, Key=MODEL_FILE, Body=b"weights")
    sm = boto3.client("secretsmanager")
    for key in ("jwt", "qdrant-api-key", "llm-api-key"):
        sm.create_secret(Name=f"visionrag-staging/{key}", SecretString="value")
    sm.create_secret(Name="visionrag-dev/unrelated")  # another stack's secret, no value: not ours to judge
    boto3.client("eks").create_cluster(
        name="visionrag-staging",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    return World(cfg=cfg, values={**values, "visionrag:llmApiKey": {"secure": "x"}}, zone_ns=ns, public_ns=ns)


def failed(results: list[CheckResult]) -> set[tuple[str, str, str]]:
    return {(r.area, r.resource, r.check) for r in results if not r.ok}


def skipped(results: list[CheckResult]) -> set[tuple[str, str]]:
    return {(r.area, r.check) for r in results if r.ok and r.detail.startswith(NOT_CHECKED)}


def test_a_ready_account_passes_every_check(world: World) -> None:
    results = world.run()
    assert failed(results) == set()
    areas = {r.area for r in results}
    assert areas == {"route53", "image", "registry", "quota", "s3", "secretsmanager", "eks", "iam"}
    # qdrant comes from docker.io: reported, never silently passed.
    assert skipped(results) == {("image", "image exists in its registry")}
    assert [r.resource for r in results if r.area == "image" and r.detail.startswith(NOT_CHECKED)] == ["qdrant"]
    assert world.connected and world.connected[0][1] == 443
    secrets = {r.resource for r in results if r.area == "secretsmanager"}
    assert secrets == {"visionrag-staging/jwt", "visionrag-staging/qdrant-api-key", "visionrag-staging/llm-api-key"}


def test_missing_hosted_zone_fails(world: World) -> None:
    world.cfg = world.cfg.model_copy(
        update={"edge": world.cfg.edge.model_copy(update={"hosted_zone_id": "ZNOSUCHZONE"})}
    )
    assert failed(world.run()) == {("route53", "ZNOSUCHZONE", "hosted zone exists")}


def test_zone_not_delegated_by_the_parent_fails(world: World) -> None:
    world.public_ns = ["ns1.old-registrar.example.net."]
    zone = world.cfg.edge.hosted_zone_id
    assert failed(world.run()) == {("route53", zone, "parent delegates to the zone")}


def test_without_a_resolver_the_delegation_is_reported_not_checked(world: World) -> None:
    world.public_ns = None
    results = world.run()
    assert failed(results) == set()
    assert ("route53", "parent delegates to the zone") in skipped(results)


def test_a_zone_that_does_not_cover_the_domain_fails(world: World) -> None:
    other = boto3.client("route53").create_hosted_zone(Name="other.example.org", CallerReference="other")
    zone_id = other["HostedZone"]["Id"].rsplit("/", 1)[-1]
    world.public_ns = list(other["DelegationSet"]["NameServers"])
    world.cfg = world.cfg.model_copy(update={"edge": world.cfg.edge.model_copy(update={"hosted_zone_id": zone_id})})
    assert failed(world.run()) == {("route53", zone_id, "zone covers the domain")}


def test_apex_ns_records_edited_away_from_the_delegation_set_fail(world: World) -> None:
    zone = world.cfg.edge.hosted_zone_id
    boto3.client("route53").change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "visionrag.example.com.",
                        "Type": "NS",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "ns1.elsewhere.example.net."}],
                    },
                }
            ]
        },
    )
    assert failed(world.run()) == {("route53", zone, "apex NS records are the zone's name servers")}


def test_an_image_digest_that_was_never_pushed_fails(world: World) -> None:
    w = world.cfg.workloads
    ghost = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/visionrag-api@sha256:" + "0" * 64
    world.cfg = world.cfg.model_copy(
        update={"workloads": w.model_copy(update={"api": w.api.model_copy(update={"image": ghost})})}
    )
    assert failed(world.run()) == {("image", "api", "image exists in its registry")}


def test_gpu_quota_below_max_size_times_vcpus_fails(world: World) -> None:
    gpu = world.cfg.cluster.gpu_nodes  # staging: g5.xlarge (4 vCPUs) x maxSize 2 = 8
    assert (gpu.instance_types, gpu.max_size) == (["g5.xlarge"], 2)
    world.quota_vcpus = 8.0
    assert failed(world.run()) == set()
    world.quota_vcpus = 7.0
    results = world.run()
    assert failed(results) == {("quota", "ec2/L-DB2E81BA", "On-Demand vCPU quota covers the GPU node group's maxSize")}
    assert "8 vCPUs needed" in next(r.detail for r in results if r.area == "quota")


def test_missing_model_weights_fail(world: World) -> None:
    s3 = boto3.client("s3")
    bucket = f"visionrag-staging-{ACCOUNT}-{REGION}-models"
    s3.delete_object(Bucket=bucket, Key=MODEL_FILE)
    s3.put_object(Bucket=bucket, Key="vidore/colpali-v1.2/model.safetensors", Body=b"other model")
    assert failed(world.run()) == {("s3", bucket, "model weights uploaded")}


def test_first_deploy_skips_what_the_program_creates(world: World) -> None:
    s3 = boto3.client("s3")
    bucket = f"visionrag-staging-{ACCOUNT}-{REGION}-models"
    s3.delete_object(Bucket=bucket, Key=MODEL_FILE)
    s3.delete_bucket(Bucket=bucket)
    sm = boto3.client("secretsmanager")
    for key in ("jwt", "qdrant-api-key", "llm-api-key"):
        sm.delete_secret(SecretId=f"visionrag-staging/{key}", ForceDeleteWithoutRecovery=True)
    boto3.client("eks").delete_cluster(name="visionrag-staging")
    results = world.run()
    assert failed(results) == set()
    assert {("s3", "model weights uploaded"), ("eks", "deployer reaches the cluster endpoint (TCP 443)")} <= skipped(
        results
    )
    assert ("secretsmanager", "secrets have a current value") in skipped(results)
    assert world.connected == []


def test_a_secret_without_a_value_fails_and_a_set_key_must_have_its_secret(world: World) -> None:
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="visionrag-staging/cache-auth")  # created, never given a value
    sm.delete_secret(SecretId="visionrag-staging/llm-api-key", ForceDeleteWithoutRecovery=True)
    assert failed(world.run()) == {
        ("secretsmanager", "visionrag-staging/cache-auth", "secret has a current value"),
        ("secretsmanager", "visionrag-staging/llm-api-key", "secret has a current value"),
    }


def test_an_unreachable_endpoint_fails(world: World) -> None:
    world.reachable = False
    results = world.run()
    assert failed(results) == {("eks", "visionrag-staging", "deployer reaches the cluster endpoint (TCP 443)")}
    assert "inside the VPC" in next(r.detail for r in results if r.area == "eks")


# ---- output formats and exit codes (those of `preview`) -------------------------------------------------------
def _main(world: World, fmt: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(preflight, "load_config", lambda stack: (world.cfg, world.values))
    monkeypatch.setattr(preflight, "dig_resolver", world.resolver)

    def run(cfg: StackConfig, values: Any, *, client: Any, stack: str | None = None) -> list[CheckResult]:
        return RUN_PREFLIGHT(
            cfg, values, client=world.client, resolver=world.resolver, connect=world.connect, stack=stack
        )

    monkeypatch.setattr(preflight, "run_preflight", run)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["preflight", "staging", "--format", fmt], out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_exit_0_when_ready_and_1_naming_the_failed_check(
    world: World, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    rc, out, _ = _main(world, fmt, monkeypatch)
    assert rc == 0
    if fmt == "json":
        doc = json.loads(out)
        assert doc["ok"] is True and doc["failed"] == 0
        assert {c["status"] for c in doc["checks"]} == {"pass", "skip"}
    elif fmt == "markdown":
        assert out.startswith("### `staging`: preflight") and "✅ OK" in out and "⚠️" in out
    else:
        assert "RESULT" in out and "preflight staging: OK" in out
    world.reachable = False
    rc, out, err = _main(world, fmt, monkeypatch)
    assert rc == 1
    assert "deployer reaches the cluster endpoint" in err
    if fmt == "json":
        assert json.loads(out)["failed"] == 1
    if fmt == "markdown":
        assert "❌ BLOCKED: 1 check(s) failed" in out


def test_bad_config_exits_2_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad(stack: str) -> Any:
        raise ConfigError(stack, [("cluster.deployRoleArn", "is required in tier 'staging'")])

    monkeypatch.setattr(preflight, "load_config", bad)
    err = io.StringIO()
    assert cli.main(["preflight", "staging"], out=io.StringIO(), err=err) == 2
    assert "visionrag:cluster.deployRoleArn" in err.getvalue()
    assert cli.main(["preflight", "no-such-stack"], out=io.StringIO(), err=io.StringIO()) == 2


def test_committed_stacks_load_without_running_the_program() -> None:
    for stack in ("dev", "staging", "prod"):
        cfg, _ = preflight.load_config(stack)
        assert cfg.tier == stack
        assert set(preflight.configured_images(cfg)) >= {"api", "worker", "embedder", "qdrant", "snapshots"}


def test_a_plain_optional_secret_is_refused_before_up(tmp_path: Any) -> None:
    """`pulumi config set visionrag:llmApiKey sk-...` without --secret: preflight refuses it, as the program would."""
    import shutil

    from stacks.engine.offline import ROOT

    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    with (tmp_path / "Pulumi.staging.yaml").open("a") as f:
        f.write("  visionrag:llmApiKey: sk-plain-text-key\n")
    with pytest.raises(ConfigError, match="llmApiKey"):
        preflight.load_config("staging", tmp_path)
    text = (
        (tmp_path / "Pulumi.staging.yaml")
        .read_text()
        .replace("visionrag:llmApiKey: sk-plain-text-key", "visionrag:llmApiKey:\n    secure: AAABAencrypted")
    )
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    cfg, _ = preflight.load_config("staging", tmp_path)
    assert cfg.tier == "staging"


# ---- service-linked roles: the switch must match the account (IAM refuses a second one) -------------------------
@pytest.fixture
def iam() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def _slr(iam: Any, **tags: str) -> None:
    iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
    if tags:
        iam.tag_role(RoleName="AWSServiceRoleForAutoScaling", Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def _slr_verdict(iam: Any, create: bool, tier: str = "staging") -> tuple[bool, str]:
    (result,) = check_service_linked_roles(iam, create=create, project="visionrag", tier=tier)
    return result.ok, result.detail


def test_a_fresh_account_lets_the_stack_create_the_role(iam: Any) -> None:
    assert _slr_verdict(iam, create=True)[0]
    ok, detail = _slr_verdict(iam, create=False)
    assert not ok and "set it true" in detail


def test_a_role_another_stack_or_aws_made_cannot_be_created_again(iam: Any) -> None:
    # A shared account: dev created the role on its first `up`; staging with the default switch would fail mid-`up`.
    _slr(iam, project="visionrag", tier="dev")
    ok, detail = _slr_verdict(iam, create=True)
    assert not ok and "visionrag/dev" in detail and "createServiceLinkedRoles false" in detail
    assert _slr_verdict(iam, create=False)[0]
    assert _slr_verdict(iam, create=True, tier="dev")[0]  # dev's own role on its next deploy


def test_a_role_aws_made_on_first_use_is_reported_as_such(iam: Any) -> None:
    _slr(iam)
    ok, detail = _slr_verdict(iam, create=True)
    assert not ok and "AWS or another tool" in detail
