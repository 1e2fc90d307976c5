"""The signature / attestation verifiers promotion runs: cosign's key-based format in-process (real manifests in
moto's ECR), and the exact commands the keyless cosign verifier runs in CI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stacks.supply_chain.cosign_key import KeyVerifier, load_public_key
from stacks.supply_chain.refs import ImageRef, RefError, parse_ecr_ref
from stacks.supply_chain.verifier import (
    GITHUB_OIDC_ISSUER,
    PROVENANCE_PREDICATE,
    SBOM_PREDICATE,
    CosignCliVerifier,
    ci_identity,
)
from tests.delivery.oci_fixtures import (
    REGISTRY,
    BlobEcrImages,
    Blobs,
    attest,
    new_key,
    public_pem,
    push_image,
    put_manifest,
    release,
    sign,
    signature_payload,
)

REPO = "visionrag-api"


def verifier(ecr: Any, blobs: Blobs, trusted: ec.EllipticCurvePrivateKey) -> KeyVerifier:
    return KeyVerifier(images=BlobEcrImages(ecr, blobs), public_key=load_public_key(public_pem(trusted)))


def test_a_signed_and_attested_release_passes(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    ref = release(ecr, blobs, REPO, "api v1", key)
    assert verifier(ecr, blobs, key).problems(ref) == []


def test_an_unsigned_image_is_refused(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    ref = push_image(ecr, blobs, REPO, "api v1")
    attest(ecr, blobs, ref, key)
    assert verifier(ecr, blobs, key).problems(ref) == [f"signature: no {ref.sig_tag} in {REPO} (unsigned)"]


def test_a_signature_of_another_digest_is_refused(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    ref = push_image(ecr, blobs, REPO, "api v1")
    other = push_image(ecr, blobs, REPO, "api v0", tag="old")
    # A valid signature, by the trusted key, of the OTHER image, stored where this image's signature belongs.
    sign(ecr, blobs, ref, key, payload=signature_payload(ref, digest=other.digest))
    attest(ecr, blobs, ref, key)
    (problem,) = verifier(ecr, blobs, key).problems(ref)
    assert problem == f"signature: the signature is for {other.digest}, not {ref.digest}"


def test_a_signature_for_another_repository_is_refused(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    ref = push_image(ecr, blobs, REPO, "api v1")
    sign(ecr, blobs, ref, key, payload=signature_payload(ref, repository=f"{REGISTRY}/visionrag-worker"))
    attest(ecr, blobs, ref, key)
    (problem,) = verifier(ecr, blobs, key).problems(ref)
    assert "for repository" in problem and "visionrag-worker" in problem


def test_a_tampered_payload_is_refused(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    ref = push_image(ecr, blobs, REPO, "api v1")
    forged = signature_payload(ref).replace(b'"optional": null', b'"optional": {"x": 1}')
    assert forged != signature_payload(ref)
    sign(ecr, blobs, ref, key, stored_payload=forged)  # the blob was swapped after signing
    attest(ecr, blobs, ref, key)
    (problem,) = verifier(ecr, blobs, key).problems(ref)
    assert "does not hash to its digest (tampered)" in problem


def test_a_payload_re_hashed_after_tampering_fails_the_signature(
    ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey
) -> None:
    """The attacker also rewrites the layer digest: the payload then no longer matches the signature."""
    ref = push_image(ecr, blobs, REPO, "api v1")
    good = signature_payload(ref)
    sign(ecr, blobs, ref, key, payload=good)
    attest(ecr, blobs, ref, key)
    # Re-sign nothing: push a manifest whose layer is the forged payload with the ORIGINAL signature.
    manifest = json.loads(BlobEcrImages(ecr, blobs).manifest(ref, tag=ref.sig_tag).text)
    signature = manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
    forged = good.replace(b'"optional": null', b'"optional": {"x": 1}')
    ecr.batch_delete_image(repositoryName=REPO, imageIds=[{"imageTag": ref.sig_tag}])
    layer = blobs.put(REPO, forged)
    put_manifest(
        ecr, blobs, REPO,
        [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", **layer,
          "annotations": {"dev.cosignproject.cosign/signature": signature}}],
        ref.sig_tag,
    )  # fmt: skip
    assert verifier(ecr, blobs, key).problems(ref) == ["signature: the signature does not verify with the trusted key"]


def test_a_signature_by_another_key_is_refused(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    intruder = new_key()
    ref = release(ecr, blobs, REPO, "api v1", intruder)
    problems = verifier(ecr, blobs, key).problems(ref)
    assert problems[0] == "signature: the signature does not verify with the trusted key"
    # The intruder's attestations do not count either.
    assert len(problems) == 3
    for problem, predicate in zip(problems[1:], (SBOM_PREDICATE, PROVENANCE_PREDICATE), strict=True):
        assert problem.startswith(f"attestation {predicate}: missing or not verified")
        assert "does not verify with the trusted key" in problem


@pytest.mark.parametrize("present", [(SBOM_PREDICATE,), (PROVENANCE_PREDICATE,), ()])
def test_a_missing_attestation_type_is_refused(
    ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, present: tuple[str, ...]
) -> None:
    ref = push_image(ecr, blobs, REPO, "api v1")
    sign(ecr, blobs, ref, key)
    attest(ecr, blobs, ref, key, present)
    problems = verifier(ecr, blobs, key).problems(ref)
    missing = [p for p in (SBOM_PREDICATE, PROVENANCE_PREDICATE) if p not in present]
    assert problems == [f"attestation {p}: missing or not verified" for p in missing]


def test_no_attestation_image_at_all_is_refused(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    ref = push_image(ecr, blobs, REPO, "api v1")
    sign(ecr, blobs, ref, key)
    assert verifier(ecr, blobs, key).problems(ref) == [f"attestation: no {ref.att_tag} in {REPO} (nothing attested)"]


def test_an_attestation_about_another_digest_is_refused(
    ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey
) -> None:
    ref = push_image(ecr, blobs, REPO, "api v1")
    other = push_image(ecr, blobs, REPO, "api v0", tag="old")
    sign(ecr, blobs, ref, key)
    attest(ecr, blobs, ref, key, subject_digest=other.digest)
    problems = verifier(ecr, blobs, key).problems(ref)
    assert len(problems) == 2 and all(f"not about {ref.digest}" in p for p in problems)


def test_only_ecr_digest_references_are_promotable() -> None:
    ref = parse_ecr_ref(f"{REGISTRY}/visionrag-api@sha256:{'a' * 64}")
    assert (ref.account, ref.region, ref.repository) == ("123456789012", "us-east-1", "visionrag-api")
    assert ref.sig_tag == f"sha256-{'a' * 64}.sig" and ref.att_tag == f"sha256-{'a' * 64}.att"
    for bad in (f"{REGISTRY}/visionrag-api:1.0", f"docker.io/library/x@sha256:{'a' * 64}", f"{REGISTRY}/x@sha256:1"):
        with pytest.raises(RefError, match="not an ECR digest reference"):
            parse_ecr_ref(bad)


# ---- the keyless verifier CI runs -----------------------------------------------------------------------------


def test_ci_identity_is_the_signing_workflow_on_main() -> None:
    assert ci_identity("example-org/visionrag") == (
        "https://github.com/example-org/visionrag/.github/workflows/ci.yml@refs/heads/main"
    )


def _ref() -> ImageRef:
    return parse_ecr_ref(f"{REGISTRY}/visionrag-api@sha256:{'a' * 64}")


def test_cosign_cli_verifier_runs_verify_and_both_attestation_checks_keyless() -> None:
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.CompletedProcess(list(argv), 0, "", "")

    identity = ci_identity("example-org/visionrag")
    assert CosignCliVerifier(identity=identity, run=run).problems(_ref()) == []
    who = ["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_OIDC_ISSUER]
    ref = str(_ref())
    assert calls == [
        ["cosign", "verify", *who, ref],
        ["cosign", "verify-attestation", "--type", "spdxjson", *who, ref],
        # attest-build-provenance stores a Sigstore bundle as an OCI referrer: only the new bundle format finds it.
        ["cosign", "verify-attestation", "--type", "slsaprovenance1", "--new-bundle-format", *who, ref],
    ]
    assert all("--key" not in c and "--insecure-ignore-tlog" not in c for c in calls)


def test_cosign_cli_verifier_reports_each_refusal() -> None:
    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        failing = "slsaprovenance1" in argv
        return subprocess.CompletedProcess(list(argv), 1 if failing else 0, "", "Error: no matching attestations\n")

    problems = CosignCliVerifier(identity="x", run=run).problems(_ref())
    assert problems == [f"attestation {PROVENANCE_PREDICATE}: cosign refused (Error: no matching attestations)"]
