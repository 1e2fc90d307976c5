"""Signed-image admission: what staging/prod record (and dev does not), the policies' shape against the pinned
CRD, the globs against policy-controller's matching, the IAM scope, the chart values, and the config checks."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.workloads.crd_schemas import validate
from infra.workloads.image_admission import (
    GITHUB_ACTIONS_ISSUER,
    INCLUDE_LABEL,
    PROVENANCE_PREDICATE,
    SBOM_PREDICATE,
    WEBHOOK_PORT,
    signer_identity,
)
from infra.workloads.image_globs import glob_matches, normalize
from policies.helm_values import chart_defaults, coalesce
from policies.rules.helm_releases import judge
from stacks.config import ConfigError
from stacks.config.loader import deep_merge, load_stack_config
from stacks.engine.offline import Record, read_stack_file

CIP = "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"
SIGNER = "https://github.com/example-org/visionrag/.github/workflows/ci.yml@refs/heads/main"


def _cips(record: Record) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in record.of_type(CIP)}


def _release(record: Record) -> Any:
    return next(r for r in record.of_type(RELEASE) if r.inputs["chart"] == "policy-controller")


def test_dev_has_no_admission(wl_records: dict[str, Record]) -> None:
    rec = wl_records["dev"]
    assert rec.of_type(CIP) == []
    assert all(r.inputs["chart"] != "policy-controller" for r in rec.of_type(RELEASE))
    app = next(n for n in rec.of_type("kubernetes:core/v1:Namespace") if n.inputs["metadata"]["name"] == "visionrag")
    assert "policy.sigstore.dev/include" not in app.inputs["metadata"]["labels"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_signed_policy_pins_ci_identity_on_every_project_repository(wl_records: dict[str, Record], stack: str) -> None:
    rec = wl_records[stack]
    cips = _cips(rec)
    assert set(cips) == {"visionrag-ci-signed", "visionrag-third-party-pinned"}
    signed = cips["visionrag-ci-signed"]["spec"]
    assert signed["mode"] == "enforce"
    [authority] = signed["authorities"]
    assert authority["keyless"]["identities"] == [{"issuer": GITHUB_ACTIONS_ISSUER, "subject": SIGNER}]
    assert authority["attestations"] == [{"name": "sbom", "predicateType": SBOM_PREDICATE}]
    globs = [i["glob"] for i in signed["images"]]
    # Every project workload's image (api, worker, embedder, frontend, snapshots = worker) is covered...
    w = rec.config.workloads
    assert w.frontend is not None
    for spec in (w.api, w.worker, w.embedder, w.frontend, w.snapshots):
        assert any(glob_matches(g, spec.image) for g in globs), spec.image
    # ... and nothing beyond the project's repositories: another repo, account or a look-alike name is not.
    api = w.api.image
    for other in (
        api.replace("visionrag-api@", "visionrag-api-evil@"),
        api.replace("123456789012", "210987654321"),
        "docker.io/library/busybox@sha256:" + "0" * 64,
    ):
        assert not any(glob_matches(g, other) for g in globs), other


def test_provenance_policy_when_required(wl_record_of: Any) -> None:
    rec = wl_record_of("prod", {"visionrag:workloads": {"imageAdmission": {"requireProvenance": True}}})
    cips = _cips(rec)
    provenance = cips["visionrag-ci-provenance"]["spec"]
    [authority] = provenance["authorities"]
    assert authority["signatureFormat"] == "bundle"
    assert authority["keyless"]["identities"] == [{"issuer": GITHUB_ACTIONS_ISSUER, "subject": SIGNER}]
    assert authority["attestations"] == [{"name": "slsa-provenance", "predicateType": PROVENANCE_PREDICATE}]
    # The same images as the signature policy: every policy matching an image must pass (AND).
    assert provenance["images"] == cips["visionrag-ci-signed"]["spec"]["images"]
    doc = {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", **cips["visionrag-ci-provenance"]}
    assert validate(doc) == []


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_third_party_images_pass_only_by_exact_digest(wl_records: dict[str, Record], stack: str) -> None:
    rec = wl_records[stack]
    static = _cips(rec)["visionrag-third-party-pinned"]["spec"]
    assert static["authorities"] == [{"name": "reviewed-digest", "static": {"action": "pass"}}]
    globs = [i["glob"] for i in static["images"]]
    qdrant = rec.config.workloads.qdrant.image
    assert normalize(qdrant) in globs and all("*" not in g for g in globs)
    assert not any(glob_matches(g, qdrant.split("@")[0] + "@sha256:" + "1" * 64) for g in globs)
    # No project image is waved through statically.
    assert not any(glob_matches(g, rec.config.workloads.api.image) for g in globs)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_policies_validate_against_the_pinned_crd(wl_records: dict[str, Record], stack: str) -> None:
    for name, body in _cips(wl_records[stack]).items():
        doc = {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", **body}
        assert validate(doc) == [], name


def test_crd_schema_catches_typos(wl_records: dict[str, Record]) -> None:
    body = copy.deepcopy(_cips(wl_records["prod"])["visionrag-ci-signed"])
    doc = {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", **body}
    doc["spec"]["authorities"][0]["keyless"]["identity"] = doc["spec"]["authorities"][0]["keyless"].pop("identities")
    assert any("identity" in e for e in validate(doc) or [])
    doc = {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", **copy.deepcopy(body)}
    doc["metadata"]["namespace"] = "visionrag"  # cluster-scoped
    assert validate(doc)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_app_namespace_opted_in_controller_namespace_not(wl_records: dict[str, Record], stack: str) -> None:
    rec = wl_records[stack]
    labels = {
        n.inputs["metadata"]["name"]: n.inputs["metadata"]["labels"]
        for n in rec.of_type("kubernetes:core/v1:Namespace")
    }
    assert INCLUDE_LABEL.items() <= labels["visionrag"].items()
    assert "policy.sigstore.dev/include" not in labels[_release(rec).inputs["namespace"]]


def test_release_values_fail_closed_hardened_and_ha(wl_records: dict[str, Record]) -> None:
    release = _release(wl_records["prod"])
    values = release.inputs["values"]
    defaults = chart_defaults("policy-controller", release.inputs["version"])
    assert defaults is not None
    merged = coalesce(values, defaults)
    assert list(judge("policy-controller", merged)) == []
    wh = merged["webhook"]
    assert wh["failurePolicy"] == "Fail" and wh["configData"]["no-match-policy"] == "deny"
    assert wh["replicaCount"] >= 2 and wh["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    assert wh["image"]["version"].startswith("sha256:")
    assert wh["podSecurityContext"]["readOnlyRootFilesystem"] is True
    # The chart's own defaults alone would not pass: no pod context is rendered (enabled: false).
    assert any("runAsNonRoot" in f for f in judge("policy-controller", defaults))


def test_webhook_port_is_admitted_from_the_control_plane(wl_records: dict[str, Record]) -> None:
    rec = wl_records["prod"]
    ns = _release(rec).inputs["namespace"]
    allow = next(
        p.inputs
        for p in rec.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if p.inputs["metadata"] == {"name": "allow-controllers", "namespace": ns}
    )
    ports = {p["port"] for rule in allow["spec"]["ingress"] for p in rule["ports"]}
    assert WEBHOOK_PORT in ports
    egress = {p["port"] for rule in allow["spec"]["egress"] for p in rule["ports"]}
    assert 443 in egress  # ECR, STS and Sigstore's TUF/Rekor through NAT


def test_role_reads_only_the_project_repositories(wl_records: dict[str, Record]) -> None:
    rec = wl_records["prod"]
    policies = [
        json.loads(r.inputs["policy"])
        for r in rec.of_type("aws:iam/rolePolicy:RolePolicy")
        if "policy-controller" in r.name or "admission" in r.name
    ]
    assert policies, "no inline policy for the admission controller"
    statements = [s for p in policies for s in p["Statement"]]
    star = [s for s in statements if s["Resource"] == ["*"]]
    assert [s["Action"] for s in star] == [["ecr:GetAuthorizationToken"]]
    repos = next(s for s in statements if s["Resource"] != ["*"])
    assert all(r.startswith("arn:aws:ecr:") and r.split("/")[-1].startswith("visionrag-") for r in repos["Resource"])
    assert all(a.startswith("ecr:") and not a.startswith(("ecr:Put", "ecr:Delete")) for a in repos["Action"])


def test_signer_identity_shape() -> None:
    assert signer_identity("example-org/visionrag") == SIGNER
    with pytest.raises(ValueError, match="signer identity"):
        signer_identity("example-org/visionrag", ".github/workflows/../ci.yml")


def test_glob_semantics_match_policy_controller() -> None:
    assert normalize("qdrant/qdrant@sha256:" + "a" * 64) == "index.docker.io/qdrant/qdrant@sha256:" + "a" * 64
    assert normalize("busybox") == "index.docker.io/library/busybox:latest"
    assert normalize("docker.io/clamav/clamav:1.4@sha256:" + "b" * 64).endswith("clamav/clamav@sha256:" + "b" * 64)
    assert glob_matches("ghcr.io/*/x@sha256:*", "ghcr.io/a/x@sha256:" + "c" * 64)
    assert not glob_matches("ghcr.io/*@sha256:*", "ghcr.io/a/x@sha256:" + "c" * 64)  # * never crosses '/'
    assert glob_matches("ghcr.io/**", "ghcr.io/a/x@sha256:" + "c" * 64)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"workloads": {"imageAdmission": {"enabled": False}}}, "imageAdmission.enabled must be true"),
        ({"workloads": {"imageAdmission": {"enabled": True, "workflow": "ci.yml"}}}, "workflow path"),
        ({"workloads": {"imageAdmission": {"enabled": True, "ref": "main"}}}, "git ref"),
        ({"workloads": {"imageAdmission": {"enabled": True, "githubRepository": "nope"}}}, "owner/name"),
        ({"workloads": {"imageAdmission": {"enabled": True, "replicas": 1}}}, "replicas must be >= 2 in prod"),
    ],
)
def test_bad_config_is_refused_naming_the_key(overrides: dict[str, Any], message: str) -> None:
    values = {k.split(":", 1)[1]: v for k, v in read_stack_file("prod").items() if k.startswith("visionrag:")}
    load_stack_config("prod", values)  # the committed prod config itself is accepted
    with pytest.raises(ConfigError, match=message):
        load_stack_config("prod", deep_merge(values, overrides))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda a: a.update(static={"action": "pass"}), "exactly one of key, keyless, static"),
        (lambda a: a["keyless"].pop("url"), "exactly one of url, ca-cert"),
        (lambda a: a["keyless"]["identities"][0].update(subjectRegExp=".*"), "subject and subjectRegExp"),
        (lambda a: a["attestations"][0].update(predicateType="spdxjson"), "predicate's URI"),
        (lambda a: a.update(signatureFormat="oci"), "not legacy or bundle"),
    ],
)
def test_webhook_validation_beyond_the_crd(wl_records: dict[str, Record], mutate: Any, expected: str) -> None:
    """What policy-controller's validating webhook refuses although the CRD schema accepts it."""
    body = copy.deepcopy(_cips(wl_records["prod"])["visionrag-ci-signed"])
    mutate(body["spec"]["authorities"][0])
    doc = {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", **body}
    errors = validate(doc) or []
    assert any(expected in e for e in errors), errors


def test_app_pods_wait_for_admission(wl_records: dict[str, Record]) -> None:
    """Every pod-bearing object in the opted-in namespace is created after the controller and its policies."""
    rec = wl_records["prod"]
    # Dependencies on a component are recorded as its children: the release and every policy.
    admission = {r.urn for r in rec.resources if r.type in (CIP, RELEASE) and "ImageAdmission" in r.urn}
    assert len(admission) == 3
    kinds = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:CronJob")
    pods = [r for r in rec.resources if r.type in kinds and r.inputs["metadata"].get("namespace") == "visionrag"]
    assert {r.inputs["metadata"]["name"] for r in pods} >= {"api", "worker", "embedder", "qdrant"}
    for r in pods:
        assert admission <= set(r.dependencies), r.name


def test_enabling_admission_without_a_signer_repository_is_refused() -> None:
    values = {k.split(":", 1)[1]: v for k, v in read_stack_file("dev").items() if k.startswith("visionrag:")}
    values.pop("delivery", None)
    load_stack_config("dev", values)  # off in dev: no repository needed
    with pytest.raises(ConfigError, match=r"imageAdmission\.githubRepository: required"):
        load_stack_config("dev", deep_merge(values, {"workloads": {"imageAdmission": {"enabled": True}}}))
    cfg = load_stack_config(
        "dev", deep_merge(values, {"workloads": {"imageAdmission": {"enabled": True, "githubRepository": "o/r"}}})
    )
    assert cfg.admission_repository() == "o/r"
