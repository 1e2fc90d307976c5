"""The SLSA provenance referrer under promotion (moto ECR): attest-build-provenance pushes it untagged, so the
lifecycle's untagged-expiry rule would delete it under a running release; promotion must find it (subject = the
digest, predicate = SLSA provenance), tag it `<release tag>.prov`, and refuse a digest without one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives.asymmetric import ec

from policies.ecr_lifecycle import Image
from stacks.supply_chain.ecr_images import EcrImages, Manifest
from stacks.supply_chain.referrers import provenance_referrers
from stacks.supply_chain.refs import ImageRef
from tests.delivery.oci_fixtures import (
    ACCOUNT,
    REGION,
    BlobEcrImages,
    Blobs,
    attest,
    provenance,
    push_image,
    release,
    sign,
    tags_of,
)
from tests.delivery.test_promote_registry import promote, release_tags, released, root, run

__all__ = ["root"]  # the fixture, shared with test_promote_registry


class _Clock(datetime):
    """moto stamps imagePushedAt with datetime.now (whole seconds): a clock that ticks a minute per push."""

    t = datetime(2026, 6, 1, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        cls.t += timedelta(minutes=1)
        return cls.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[_Clock]:
    import moto.ecr.models

    monkeypatch.setattr(moto.ecr.models, "datetime", _Clock)
    monkeypatch.setattr(promote, "datetime", _Clock)  # distinct release tags per run
    return _Clock


def _no_provenance(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    ref = push_image(ecr, blobs, "visionrag-worker", "worker v3")
    sign(ecr, blobs, ref, key)
    attest(ecr, blobs, ref, key)
    return ref, "provenance: no https://slsa.dev/provenance/v1 bundle referring to it"


def _provenance_of_another_digest(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    other = release(ecr, blobs, "visionrag-worker", "worker v0", key)
    ref = push_image(ecr, blobs, "visionrag-worker", "worker v3")
    sign(ecr, blobs, ref, key)
    attest(ecr, blobs, ref, key)
    provenance(ecr, blobs, ref, subject=other.digest)  # stored next to it, but about the other image
    return ref, "provenance: no https://slsa.dev/provenance/v1 bundle"


def _another_predicate(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    ref = push_image(ecr, blobs, "visionrag-worker", "worker v3")
    sign(ecr, blobs, ref, key)
    attest(ecr, blobs, ref, key)
    provenance(ecr, blobs, ref, predicate="https://spdx.dev/Document")  # an SBOM bundle is not provenance
    return ref, "provenance: no https://slsa.dev/provenance/v1 bundle"


@pytest.mark.parametrize("broken", [_no_provenance, _provenance_of_another_digest, _another_predicate])
def test_a_digest_without_its_provenance_referrer_is_refused(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str],
    broken: Any,
) -> None:  # fmt: skip
    refs = released(ecr, blobs, key)
    bad, reason = broken(ecr, blobs, key)
    refs["worker"] = bad
    before = (root / "Pulumi.staging.yaml").read_text()

    assert run(root, key, refs) == 2

    err = capsys.readouterr().err
    assert f"worker: {bad}: {reason}" in err
    assert "api:" not in err
    assert (root / "Pulumi.staging.yaml").read_text() == before
    assert release_tags(ecr) == []


def test_the_provenance_tagged_by_an_earlier_stage_is_found_and_tagged_again(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock]
) -> None:
    refs = released(ecr, blobs, key)
    (root / "Pulumi.dev.yaml").write_text((root / "Pulumi.staging.yaml").read_text())
    assert run(root, key, refs, stack="dev") == 0
    assert run(root, key, refs, stack="staging") == 0  # the referrer is no longer untagged: still its provenance
    for ref in refs.values():
        (prov,) = [t for t in tags_of(ecr, ref.repository).values() if any(x.endswith(".prov") for x in t)]
        assert [t.split("-")[1] for t in prov] == ["dev", "staging"] and all(t.endswith(".prov") for t in prov)


def test_of_several_provenance_referrers_the_newest_is_tagged(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, clock: type[_Clock]
) -> None:
    """A re-run CI job attests again: one `.prov` per release (the window counts ARTIFACTS_PER_RELEASE images)."""
    refs = released(ecr, blobs, key)
    rerun = provenance(ecr, blobs, refs["api"], attempt=2)
    assert run(root, key, refs) == 0
    tags = tags_of(ecr, refs["api"].repository)
    assert [t for t in tags[rerun] if t.endswith(".prov")] and sum(
        1 for t in tags.values() for x in t if x.endswith(".prov")
    ) == 1


def test_a_subject_reported_by_describe_images_is_used_without_reading_other_manifests() -> None:
    """Real ECR reports a referrer's subject (`subjectManifestDigest`); only matching manifests are read."""
    ref = ImageRef(account=ACCOUNT, region=REGION, repository="visionrag-api", digest="sha256:" + "a" * 64)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    prov = json.dumps(
        {
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "subject": {"digest": ref.digest},
            "annotations": {"dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1"},
        }
    )
    images = [
        Image(ref.digest, frozenset({"abc"}), at),
        Image("sha256:" + "b" * 64, frozenset(), at, subject=ref.digest),
        Image("sha256:" + "c" * 64, frozenset(), at, subject="sha256:" + "f" * 64),
        Image("sha256:" + "d" * 64, frozenset({"sha256-x.sig"}), at),
    ]
    asked: list[list[str]] = []

    class Source:
        def manifests(self, r: ImageRef, digests: Any) -> dict[str, Manifest]:
            asked.append(sorted(digests))
            return {d: Manifest(prov, "application/vnd.oci.image.manifest.v1+json") for d in digests}

    (found,) = provenance_referrers(Source(), ref, images)
    assert found.digest == "sha256:" + "b" * 64 and asked == [["sha256:" + "b" * 64]]


def test_ecr_images_reads_the_subject_from_the_describe_images_answer() -> None:
    client = boto3.client("ecr", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    ref = ImageRef(account=ACCOUNT, region=REGION, repository="visionrag-api", digest="sha256:" + "a" * 64)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    details = [
        {"imageDigest": ref.digest, "imageTags": ["abc"], "imagePushedAt": at},
        {"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": at, "subjectManifestDigest": ref.digest,
         "artifactMediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"},
    ]  # fmt: skip
    with Stubber(client) as stub:  # botocore validates the request and this answer against ECR's API model
        stub.add_response(
            "describe_images", {"imageDetails": details}, {"registryId": ACCOUNT, "repositoryName": ref.repository}
        )
        images = EcrImages(client).images(ref)
    assert [(i.digest, i.tags, i.subject) for i in images] == [
        (ref.digest, frozenset({"abc"}), None),
        ("sha256:" + "b" * 64, frozenset(), ref.digest),
    ]


def test_blob_images_serve_the_same_referrers_as_ecr(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    """Under moto (no subjectManifestDigest) the subject is read from the manifests: same answer."""
    ref = release(ecr, blobs, "visionrag-api", "api v1", key)
    other = release(ecr, blobs, "visionrag-api", "api v2", key)
    images = BlobEcrImages(ecr, blobs)
    (mine,) = provenance_referrers(images, ref, images.images(ref))
    (theirs,) = provenance_referrers(images, other, images.images(other))
    assert mine.digest != theirs.digest
    assert json.loads(mine.manifest.text)["subject"]["digest"] == ref.digest
