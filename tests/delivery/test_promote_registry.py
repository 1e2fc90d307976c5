"""`promote.py promote` end to end under moto ECR: verify every digest, tag digest + .sig + .att + .prov with the
release tag, then write the stack file; any refusal tags nothing and writes nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from infra.registry import ARTIFACTS_PER_RELEASE, RELEASE_TAG_PREFIX
from stacks.supply_chain.refs import ImageRef
from tests.delivery.oci_fixtures import (
    REGISTRY,
    REPOS,
    BlobEcrImages,
    Blobs,
    attest,
    new_key,
    public_pem,
    push_image,
    release,
    sign,
    tags_of,
)

ROOT = Path(__file__).resolve().parents[2]
OLD = {name: f"{REGISTRY}/visionrag-{name}@sha256:{c * 64}" for name, c in zip(
    ("api", "worker", "embedder", "frontend"), "abce", strict=True)}  # fmt: skip
STACK = f"""\
config:
  aws:region: us-east-1 # kept
  visionrag:workloads:
    api: {{image: "{OLD["api"]}", replicas: 2}}
    worker: {{image: "{OLD["worker"]}"}}
    embedder: {{image: "{OLD["embedder"]}"}}
    snapshots: {{image: "{OLD["worker"]}"}}
    frontend: {{image: "{OLD["frontend"]}"}}
"""
RELEASE_TAG = re.compile(r"^release-staging-\d{8}T\d{6}Z$")


def _load_promote() -> ModuleType:
    spec = importlib.util.spec_from_file_location("promote_registry", ROOT / "scripts" / "promote.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


promote = _load_promote()


@pytest.fixture
def root(tmp_path: Path, ecr: Any, blobs: Blobs, monkeypatch: pytest.MonkeyPatch) -> Path:
    for stack in ("staging", "prod"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(STACK)
    (tmp_path / "Pulumi.prod-dr.yaml").write_text(STACK)
    monkeypatch.setattr(promote, "ecr_images_for", lambda region: BlobEcrImages(ecr, blobs))
    return tmp_path


def released(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> dict[str, ImageRef]:
    return {repo.removeprefix("visionrag-"): release(ecr, blobs, repo, f"{repo} v2", key) for repo in REPOS}


def run(
    root: Path, key: ec.EllipticCurvePrivateKey, images: dict[str, Any], *extra: str, stack: str = "staging"
) -> int:
    (root / "images.json").write_text(json.dumps({k: str(v) for k, v in images.items()}))
    (root / "cosign.pub").write_bytes(public_pem(key))
    argv = ["--root", str(root), "promote", "--stack", stack, "--images", str(root / "images.json")]
    return int(promote.main([*argv, "--public-key", str(root / "cosign.pub"), *extra]))


def release_tags(ecr: Any) -> list[str]:
    return sorted(
        t for repo in REPOS for tags in tags_of(ecr, repo).values() for t in tags if t.startswith(RELEASE_TAG_PREFIX)
    )


def test_a_verified_release_is_tagged_then_written(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    out = tmp_path / "gh_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    refs = released(ecr, blobs, key)
    assert run(root, key, refs) == 0

    workloads = yaml.safe_load((root / "Pulumi.staging.yaml").read_text())["config"]["visionrag:workloads"]
    assert {k: workloads[k]["image"] for k in refs} == {k: str(v) for k, v in refs.items()}
    assert workloads["snapshots"]["image"] == str(refs["worker"]) and workloads["api"]["replicas"] == 2
    assert "# kept" in (root / "Pulumi.staging.yaml").read_text()

    (tag,) = {line.split("=", 1)[1] for line in out.read_text().splitlines() if line.startswith("release_tag=")}
    assert RELEASE_TAG.match(tag)
    for name, ref in refs.items():
        tags = tags_of(ecr, ref.repository)
        # The digest, its signature image and its attestation image carry the release tag (+ .sig / .att) ...
        assert tag in tags[ref.digest], name
        sig_digest = next(d for d, t in tags.items() if ref.sig_tag in t)
        att_digest = next(d for d, t in tags.items() if ref.att_tag in t)
        assert f"{tag}.sig" in tags[sig_digest] and f"{tag}.att" in tags[att_digest]
        # ... as does the (until now untagged) provenance referrer, and nothing else ...
        (prov_digest,) = [d for d, t in tags.items() if d not in (ref.digest, sig_digest, att_digest)]
        assert tags[prov_digest] == [f"{tag}.prov"]
        # ... and no new image was made: the same four manifests, one more tag each.
        assert len(tags) == ARTIFACTS_PER_RELEASE
    assert len(release_tags(ecr)) == 4 * ARTIFACTS_PER_RELEASE


def test_a_second_promotion_adds_new_tags_and_keeps_the_old_ones(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = released(ecr, blobs, key)
    assert run(root, key, refs) == 0
    first = release_tags(ecr)
    monkeypatch.setattr(promote, "datetime", _Later)  # a later run: tags are immutable, so a new one
    assert run(root, key, refs) == 0
    assert set(first) < set(release_tags(ecr)) and len(release_tags(ecr)) == 2 * 4 * ARTIFACTS_PER_RELEASE


class _Later:
    @staticmethod
    def now(tz: Any) -> Any:
        from datetime import datetime, timedelta

        return datetime.now(tz) + timedelta(hours=1)


def _unsigned(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    ref = push_image(ecr, blobs, "visionrag-worker", "worker v3")
    attest(ecr, blobs, ref, key)
    return ref, "(unsigned)"


def _wrong_key(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    return release(ecr, blobs, "visionrag-worker", "worker v3", new_key()), "does not verify with the trusted key"


def _no_provenance(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    ref = push_image(ecr, blobs, "visionrag-worker", "worker v3")
    sign(ecr, blobs, ref, key)
    attest(ecr, blobs, ref, key, ("https://spdx.dev/Document",))
    return ref, "attestation https://slsa.dev/provenance/v1: missing"


def _missing_digest(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    ref = ImageRef(
        account="123456789012", region="us-east-1", repository="visionrag-worker", digest="sha256:" + "9" * 64
    )
    return ref, "not in the registry"


def _wrong_digest_signed(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> tuple[ImageRef, str]:
    from tests.delivery.oci_fixtures import signature_payload

    ref = push_image(ecr, blobs, "visionrag-worker", "worker v3")
    other = push_image(ecr, blobs, "visionrag-worker", "worker v0", tag="old")
    sign(ecr, blobs, ref, key, payload=signature_payload(ref, digest=other.digest))
    attest(ecr, blobs, ref, key)
    return ref, f"the signature is for {other.digest}"


@pytest.mark.parametrize("broken", [_unsigned, _wrong_key, _no_provenance, _missing_digest, _wrong_digest_signed])
def test_one_bad_image_refuses_the_whole_promotion(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str],
    broken: Any,
) -> None:  # fmt: skip
    refs = released(ecr, blobs, key)
    bad, reason = broken(ecr, blobs, key)
    refs["worker"] = bad
    before = (root / "Pulumi.staging.yaml").read_text()

    assert run(root, key, refs) == 2

    err = capsys.readouterr().err
    assert "refused, nothing tagged or written" in err
    assert "worker: " in err and str(bad.digest) in err and reason in err
    assert "api:" not in err  # the good images are not blamed
    assert (root / "Pulumi.staging.yaml").read_text() == before
    assert release_tags(ecr) == []  # the three good images were not tagged either


def test_promotion_needs_a_way_to_verify(root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    refs = released(ecr, blobs, key)
    (root / "images.json").write_text(json.dumps({k: str(v) for k, v in refs.items()}))
    argv = ["--root", str(root), "promote", "--stack", "staging", "--images", str(root / "images.json")]
    assert promote.main(argv) == 2
    assert "--certificate-identity (keyless, CI) or --public-key is required" in capsys.readouterr().err
    assert release_tags(ecr) == []


def test_only_release_stages_are_promoted_into(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (root / "Pulumi.prod-dr.yaml").read_text()
    assert run(root, key, released(ecr, blobs, key), stack="prod-dr") == 2
    assert "'prod-dr' is not one of dev, staging, prod" in capsys.readouterr().err
    assert (root / "Pulumi.prod-dr.yaml").read_text() == before and release_tags(ecr) == []


def test_images_from_two_registries_are_refused(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    refs: dict[str, Any] = dict(released(ecr, blobs, key))
    refs["api"] = str(refs["api"]).replace("123456789012", "210987654321")
    assert run(root, key, refs) == 2
    assert "the one shared registry" in capsys.readouterr().err
    assert release_tags(ecr) == []


def test_promote_into_prod_with_live_outputs_starts_a_canary(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey
) -> None:
    refs = released(ecr, blobs, key)
    live = root / "outputs.json"
    live.write_text(json.dumps({"images": OLD, "canary": None}))
    assert run(root, key, refs, "--live", str(live), "--canary-weight", "10", stack="prod") == 0
    workloads = yaml.safe_load((root / "Pulumi.prod.yaml").read_text())["config"]["visionrag:workloads"]
    assert workloads["api"]["image"] == OLD["api"]
    assert workloads["canary"] == {"image": str(refs["api"]), "weight": 10}
    assert all(t.startswith("release-prod-") for t in release_tags(ecr))


def test_a_tag_is_never_moved_to_another_image(ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey) -> None:
    images = BlobEcrImages(ecr, blobs)
    one = push_image(ecr, blobs, "visionrag-api", "api v1")
    two = push_image(ecr, blobs, "visionrag-api", "api v2")
    images.add_tag(one, images.manifest(one), "release-dev-20260101T000000Z")
    images.add_tag(one, images.manifest(one), "release-dev-20260101T000000Z")  # a re-run: same image, fine
    from stacks.supply_chain.ecr_images import RegistryError

    with pytest.raises(RegistryError, match="already names another image"):
        images.add_tag(two, images.manifest(two), "release-dev-20260101T000000Z")
    assert "release-dev-20260101T000000Z" in tags_of(ecr, "visionrag-api")[one.digest]
    assert "release-dev-20260101T000000Z" not in tags_of(ecr, "visionrag-api")[two.digest]


@pytest.mark.parametrize("cosign_rc", [0, 1])
def test_keyless_promotion_runs_cosign_per_image_and_obeys_it(
    root: Path, ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cosign_rc: int,
) -> None:  # fmt: skip
    """The CI path: a `cosign` on PATH (here a recording stand-in) decides; the registry part is real moto."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "cosign.log"
    fake = bin_dir / "cosign"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ {cosign_rc} = 0 ] || echo "Error: no signatures found" >&2\n'
                    f"exit {cosign_rc}\n")  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    refs = released(ecr, blobs, key)
    (root / "images.json").write_text(json.dumps({k: str(v) for k, v in refs.items()}))
    identity = "https://github.com/example-org/visionrag/.github/workflows/ci.yml@refs/heads/main"
    argv = ["--root", str(root), "promote", "--stack", "staging", "--images", str(root / "images.json")]
    before = (root / "Pulumi.staging.yaml").read_text()

    rc = promote.main([*argv, "--certificate-identity", identity])

    calls = log.read_text().splitlines()
    assert all(f"--certificate-identity {identity} --certificate-oidc-issuer https://token.actions" in c for c in calls)
    if cosign_rc == 0:
        assert rc == 0 and len(calls) == 12  # verify + 2 x verify-attestation, for each of the four images
        assert len(release_tags(ecr)) == 4 * ARTIFACTS_PER_RELEASE
    else:
        assert rc == 2 and release_tags(ecr) == []
        assert (root / "Pulumi.staging.yaml").read_text() == before
        assert "signature: cosign refused (Error: no signatures found)" in capsys.readouterr().err
