"""Real OCI manifests pushed into moto's ECR, signed and attested in cosign's key-based format.

moto stores manifests (PutImage / BatchGetImage) but has no GetDownloadUrlForLayer, so layer blobs (signature
payloads, DSSE envelopes) live in `Blobs`, keyed by repository and digest, and `BlobEcrImages` serves them where
the real EcrImages would download them from ECR's presigned URL.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stacks.supply_chain.cosign_key import (
    DSSE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    PREDICATE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIGNATURE_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    pae,
)
from stacks.supply_chain.ecr_images import EcrImages, RegistryError
from stacks.supply_chain.refs import ImageRef, companion_tag
from stacks.supply_chain.verifier import PROVENANCE_PREDICATE, SBOM_PREDICATE

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Blobs:
    data: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def put(self, repo: str, data: bytes) -> dict[str, Any]:
        digest = sha256(data)
        self.data[(repo, digest)] = data
        return {"digest": digest, "size": len(data)}


class BlobEcrImages(EcrImages):
    def __init__(self, client: Any, blobs: Blobs) -> None:
        super().__init__(client, fetch_url=lambda url: b"")
        self._blobs = blobs

    def blob(self, ref: ImageRef, digest: str) -> bytes:
        try:
            return self._blobs.data[(ref.repository, digest)]
        except KeyError:
            raise RegistryError(f"{ref.name}: blob {digest} is not in the repository") from None


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, ec.ECDSA(hashes.SHA256()))).decode()


def put_manifest(ecr: Any, blobs: Blobs, repo: str, layers: list[dict[str, Any]], tag: str) -> str:
    """Push an OCI image manifest under `tag`; its digest is the sha256 of the manifest text, as in ECR."""
    config = blobs.put(repo, b"{}")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": layers,
        },
        separators=(",", ":"),
    )
    digest = sha256(manifest.encode())
    ecr.put_image(
        repositoryName=repo, imageManifest=manifest, imageManifestMediaType=OCI_MANIFEST, imageTag=tag,
        imageDigest=digest,
    )  # fmt: skip
    return digest


def push_image(ecr: Any, blobs: Blobs, repo: str, content: str, tag: str | None = None) -> ImageRef:
    """Push a one-layer image; its tag (the commit sha in ci.yml) defaults to one derived from the content."""
    tag = tag or "build-" + hashlib.sha256(content.encode()).hexdigest()[:12]
    layer = blobs.put(repo, content.encode())
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]
    digest = put_manifest(ecr, blobs, repo, layers, tag)
    return ImageRef(account=ACCOUNT, region=REGION, repository=repo, digest=digest)


def signature_payload(ref: ImageRef, *, digest: str | None = None, repository: str | None = None) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": repository or ref.name},
                "image": {"docker-manifest-digest": digest or ref.digest},
                "type": SIGNATURE_TYPE,
            },
            "optional": None,
        }
    ).encode()


def sign(
    ecr: Any,
    blobs: Blobs,
    ref: ImageRef,
    key: ec.EllipticCurvePrivateKey,
    *,
    payload: bytes | None = None,
    stored_payload: bytes | None = None,
) -> None:
    """`cosign sign --key`: the payload as a layer of `sha256-<hex>.sig`, its signature in the annotation.
    `stored_payload` replaces the blob after signing (tampering in the registry)."""
    payload = payload if payload is not None else signature_payload(ref)
    layer = blobs.put(ref.repository, payload)
    if stored_payload is not None:
        blobs.data[(ref.repository, layer["digest"])] = stored_payload
    annotations = {SIGNATURE_ANNOTATION: _sign(key, payload)}
    put_manifest(
        ecr, blobs, ref.repository, [{"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, **layer, "annotations": annotations}],
        ref.sig_tag,
    )  # fmt: skip


def statement(ref: ImageRef, predicate_type: str, *, subject_digest: str | None = None) -> bytes:
    hex_ = (subject_digest or ref.digest).split(":", 1)[1]
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": predicate_type,
            "subject": [{"name": ref.name, "digest": {"sha256": hex_}}],
            "predicate": {"spdxVersion": "SPDX-2.3"} if predicate_type == SBOM_PREDICATE else {"buildDefinition": {}},
        }
    ).encode()


def attest(
    ecr: Any,
    blobs: Blobs,
    ref: ImageRef,
    key: ec.EllipticCurvePrivateKey,
    predicates: tuple[str, ...] = (SBOM_PREDICATE, PROVENANCE_PREDICATE),
    *,
    subject_digest: str | None = None,
) -> None:
    """`cosign attest --key`: one DSSE envelope layer per predicate in `sha256-<hex>.att`."""
    layers = []
    for predicate in predicates:
        body = statement(ref, predicate, subject_digest=subject_digest)
        envelope = {
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "payload": base64.b64encode(body).decode(),
            "signatures": [{"keyid": "", "sig": _sign(key, pae(INTOTO_PAYLOAD_TYPE, body))}],
        }
        layer = blobs.put(ref.repository, json.dumps(envelope).encode())
        layers.append({"mediaType": DSSE_MEDIA_TYPE, **layer, "annotations": {PREDICATE_ANNOTATION: predicate}})
    put_manifest(ecr, blobs, ref.repository, layers, companion_tag(ref.digest, "att"))


SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def provenance(
    ecr: Any,
    blobs: Blobs,
    ref: ImageRef,
    *,
    predicate: str = PROVENANCE_PREDICATE,
    subject: str | None = None,
    attempt: int = 1,
) -> str:
    """What actions/attest-build-provenance (push-to-registry) pushes: a Sigstore bundle as an OCI 1.1 referrer of
    the image (`subject`), WITHOUT a tag (@sigstore/oci attachArtifactToImage; actions/attest src/attest.ts)."""
    bundle = blobs.put(ref.repository, json.dumps({"mediaType": SIGSTORE_BUNDLE, "attempt": attempt}).encode())
    empty = blobs.put(ref.repository, b"{}")
    image = ecr.batch_get_image(repositoryName=ref.repository, imageIds=[{"imageDigest": ref.digest}])["images"]
    size = len(image[0]["imageManifest"]) if image else 0
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGSTORE_BUNDLE,
            "config": {"mediaType": OCI_EMPTY, **empty},
            "layers": [{"mediaType": SIGSTORE_BUNDLE, **bundle}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject or ref.digest, "size": size},
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": predicate,
            },
        },
        separators=(",", ":"),
    )
    digest = sha256(manifest.encode())
    ecr.put_image(
        repositoryName=ref.repository, imageManifest=manifest, imageManifestMediaType=OCI_MANIFEST, imageDigest=digest
    )
    return digest


def release(ecr: Any, blobs: Blobs, repo: str, content: str, key: ec.EllipticCurvePrivateKey) -> ImageRef:
    """What ci.yml's images-release leaves behind: the image, its signature, its attestations and its provenance
    referrer."""
    ref = push_image(ecr, blobs, repo, content)
    sign(ecr, blobs, ref, key)
    attest(ecr, blobs, ref, key)
    provenance(ecr, blobs, ref)
    return ref


def tags_of(ecr: Any, repo: str) -> dict[str, list[str]]:
    """digest -> tags, for every image in the repository."""
    details = ecr.describe_images(repositoryName=repo)["imageDetails"]
    return {d["imageDigest"]: sorted(d.get("imageTags", [])) for d in details}


REPOS = tuple(f"visionrag-{image}" for image in ("api", "worker", "embedder", "frontend"))
