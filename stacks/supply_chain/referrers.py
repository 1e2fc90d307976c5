"""The SLSA provenance of a digest, as `actions/attest-build-provenance` (push-to-registry) stores it in ECR.

That action signs a Sigstore bundle and attaches it to the image with `@sigstore/oci` attachArtifactToImage: an OCI
1.1 image manifest with `artifactType: application/vnd.dev.sigstore.bundle.v0.3+json`, the image as its `subject`,
and the annotations `dev.sigstore.bundle.content: dsse-envelope` and
`dev.sigstore.bundle.predicateType: https://slsa.dev/provenance/v1` (actions/attest, src/attest.ts). ECR supports the
OCI 1.1 referrers API, so the action pushes it WITHOUT a tag (no `sha256-<hex>` fallback tag); DescribeImages
reports its subject as `subjectManifestDigest`. An untagged image is what the registry's untagged-expiry rule
deletes, so promotion tags it (`<release tag>.prov`) like the cosign `.sig` / `.att` images (docs/delivery.md,
"Registry model").

Where DescribeImages gives no `subjectManifestDigest` at all (an older API, or a stand-in), the subject is read
from the manifests themselves: the same answer, more calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from policies.ecr_lifecycle import Image
from stacks.supply_chain.ecr_images import Manifest
from stacks.supply_chain.refs import ImageRef
from stacks.supply_chain.verifier import PROVENANCE_PREDICATE

BUNDLE_ARTIFACT_PREFIX = "application/vnd.dev.sigstore.bundle"
PREDICATE_TYPE_ANNOTATION = "dev.sigstore.bundle.predicateType"


class ReferrerSource(Protocol):
    def manifests(self, ref: ImageRef, digests: Iterable[str]) -> dict[str, Manifest]: ...


@dataclass(frozen=True)
class Referrer:
    digest: str
    manifest: Manifest
    pushed_at: datetime


def _is_provenance_of(manifest: Manifest, subject: str) -> bool:
    try:
        doc = json.loads(manifest.text)
    except ValueError:
        return False
    if not isinstance(doc, dict) or (doc.get("subject") or {}).get("digest") != subject:
        return False
    artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType") or ""
    predicate = (doc.get("annotations") or {}).get(PREDICATE_TYPE_ANNOTATION)
    return str(artifact_type).startswith(BUNDLE_ARTIFACT_PREFIX) and predicate == PROVENANCE_PREDICATE


def provenance_referrers(source: ReferrerSource, ref: ImageRef, images: Sequence[Image]) -> list[Referrer]:
    """The provenance bundles whose subject is `ref`'s digest, newest first (`images`: the repository's)."""
    reported = any(i.subject is not None for i in images)
    candidates = {
        i.digest: i
        for i in images
        if i.digest != ref.digest and (i.subject == ref.digest if reported else i.subject is None)
    }
    if not candidates:
        return []
    found = [
        Referrer(digest, manifest, candidates[digest].pushed_at)
        for digest, manifest in source.manifests(ref, candidates).items()
        if _is_provenance_of(manifest, ref.digest)
    ]
    return sorted(found, key=lambda r: (r.pushed_at, r.digest), reverse=True)
