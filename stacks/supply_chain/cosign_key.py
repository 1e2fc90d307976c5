"""cosign's key-based signature and attestation format, verified in-process against a public key.

This is what `cosign verify --key cosign.pub` / `cosign verify-attestation --key cosign.pub` check, read from the
same places cosign writes (sigstore/cosign pkg/oci/static, pkg/cosign/verify.go, pkg/types):

  <repo>:sha256-<hex>.sig  an OCI manifest; each layer (mediaType application/vnd.dev.cosign.simplesigning.v1+json)
                           is a "simple signing" payload
                           {"critical": {"identity": {"docker-reference": <repo>},
                                         "image": {"docker-manifest-digest": <digest>},
                                         "type": "cosign container image signature"}, "optional": ...}
                           with the base64 ECDSA-P256/SHA-256 signature of the payload bytes in the layer annotation
                           `dev.cosignproject.cosign/signature`.
  <repo>:sha256-<hex>.att  an OCI manifest; each layer (mediaType application/vnd.dsse.envelope.v1+json, annotation
                           `predicateType`) is a DSSE envelope {payloadType: application/vnd.in-toto+json, payload:
                           base64(in-toto Statement), signatures: [{keyid, sig}]}, the signature over the DSSE
                           pre-authentication encoding PAE(payloadType, payload).

CI signs keyless (Fulcio certificate + Rekor) and is verified by the cosign binary (verifier.CosignCliVerifier);
this verifier serves key-based setups and proves the promotion's refusals offline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stacks.supply_chain.ecr_images import Manifest, RegistryError
from stacks.supply_chain.refs import ImageRef
from stacks.supply_chain.verifier import REQUIRED_PREDICATES

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
INTOTO_STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")


class ImageSource(Protocol):
    def manifest(self, ref: ImageRef, *, tag: str | None = None) -> Manifest: ...

    def blob(self, ref: ImageRef, digest: str) -> bytes: ...


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the envelope's signature covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the public key is not an ECDSA key (cosign generate-key-pair makes ECDSA P-256)")
    return key


def _verified(key: ec.EllipticCurvePublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _layers(manifest: Manifest, media_type: str) -> list[dict[str, Any]]:
    layers = json.loads(manifest.text).get("layers") or []
    return [layer for layer in layers if isinstance(layer, dict) and layer.get("mediaType") == media_type]


@dataclass(frozen=True, kw_only=True)
class KeyVerifier:
    images: ImageSource
    public_key: ec.EllipticCurvePublicKey
    predicates: Sequence[str] = REQUIRED_PREDICATES

    def _blob(self, ref: ImageRef, layer: dict[str, Any]) -> bytes:
        data = self.images.blob(ref, str(layer.get("digest")))
        if "sha256:" + hashlib.sha256(data).hexdigest() != layer.get("digest"):
            raise RegistryError(f"blob {layer.get('digest')} does not hash to its digest (tampered)")
        return data

    def signature_problem(self, ref: ImageRef) -> str | None:
        try:
            layers = _layers(self.images.manifest(ref, tag=ref.sig_tag), SIMPLE_SIGNING_MEDIA_TYPE)
        except RegistryError:
            return f"signature: no {ref.sig_tag} in {ref.repository} (unsigned)"
        reasons = []
        for layer in layers:
            try:
                payload = self._blob(ref, layer)
            except RegistryError as exc:
                reasons.append(str(exc))
                continue
            if not _verified(self.public_key, str((layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)), payload):
                reasons.append("the signature does not verify with the trusted key")
                continue
            try:
                critical = json.loads(payload).get("critical") or {}
            except (ValueError, AttributeError):
                reasons.append("the signed payload is not a simple-signing document")
                continue
            signed_digest = (critical.get("image") or {}).get("docker-manifest-digest")
            signed_repo = (critical.get("identity") or {}).get("docker-reference")
            if critical.get("type") != SIGNATURE_TYPE:
                reasons.append(f"payload type {critical.get('type')!r} is not {SIGNATURE_TYPE!r}")
            elif signed_digest != ref.digest:
                reasons.append(f"the signature is for {signed_digest}, not {ref.digest}")
            elif signed_repo != ref.name:
                reasons.append(f"the signature is for repository {signed_repo!r}, not {ref.name!r}")
            else:
                return None  # one valid signature is enough, as for cosign verify
        return "signature: " + ("; ".join(reasons) if reasons else f"{ref.sig_tag} holds no signature layer")

    def _attested_predicates(self, ref: ImageRef) -> tuple[set[str], list[str]]:
        found: set[str] = set()
        reasons: list[str] = []
        for layer in _layers(self.images.manifest(ref, tag=ref.att_tag), DSSE_MEDIA_TYPE):
            try:
                envelope = json.loads(self._blob(ref, layer))
                payload = base64.b64decode(envelope["payload"], validate=True)
                if envelope.get("payloadType") != INTOTO_PAYLOAD_TYPE:
                    raise ValueError(f"payloadType {envelope.get('payloadType')!r} is not {INTOTO_PAYLOAD_TYPE}")
                message = pae(envelope["payloadType"], payload)
                if not any(_verified(self.public_key, str(s.get("sig")), message) for s in envelope["signatures"]):
                    raise ValueError("the envelope's signature does not verify with the trusted key")
                statement = json.loads(payload)
            except (RegistryError, ValueError, KeyError, TypeError, binascii.Error) as exc:
                reasons.append(f"{(layer.get('annotations') or {}).get(PREDICATE_ANNOTATION, '?')}: {exc}")
                continue
            subjects = {s.get("digest", {}).get("sha256") for s in statement.get("subject") or []}
            if statement.get("_type") not in INTOTO_STATEMENT_TYPES or ref.digest.split(":", 1)[1] not in subjects:
                reasons.append(f"{statement.get('predicateType')}: the statement is not about {ref.digest}")
                continue
            found.add(str(statement.get("predicateType")))
        return found, reasons

    def attestation_problems(self, ref: ImageRef) -> list[str]:
        try:
            found, reasons = self._attested_predicates(ref)
        except RegistryError:
            return [f"attestation: no {ref.att_tag} in {ref.repository} (nothing attested)"]
        missing = [p for p in self.predicates if p not in found]
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        return [f"attestation {p}: missing or not verified{detail}" for p in missing]

    def problems(self, ref: ImageRef) -> list[str]:
        sig = self.signature_problem(ref)
        return ([sig] if sig else []) + self.attestation_problems(ref)
