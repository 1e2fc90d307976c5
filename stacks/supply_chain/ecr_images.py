"""The ECR calls promotion makes, and nothing else: look an image up, read its manifest, add a tag, read a blob, list
a repository's images (with their referrer subjects) and read its lifecycle policy.

A tag is added the way ECR documents retagging (ECR user guide, "Retagging an image"): `BatchGetImage` returns the
manifest exactly as stored, and `PutImage` with that manifest (and its media type) under a new tag makes no new
image, it names the same digest. Repositories are tag-IMMUTABLE (infra/registry.py), so a tag is never moved:
promotion writes a fresh `release-<stage>-<time>` tag each time.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.ecr_lifecycle import Image
from stacks.supply_chain.refs import ImageRef

# What the promote role (made with the account bootstrap, not by these stacks) must be allowed on the `visionrag-*`
# repositories: every call below, and GetDownloadUrlForLayer for cosign too, which pulls the .sig / .att layers and
# the provenance bundle as blobs (ECR serves a blob only through it). Without one, real ECR answers AccessDenied
# where moto answers; tests/delivery/test_promote_iam.py records the calls and checks docs/delivery.md lists these.
PROMOTE_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetLifecyclePolicy",
    "ecr:PutImage",
)
# What BatchGetImage may return; without acceptedMediaTypes ECR converts OCI manifests to Docker v2 schema 2.
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class RegistryError(Exception):
    """An image, tag or blob the promotion needs is not there (or ECR refused); the message says which."""


@dataclass(frozen=True)
class Manifest:
    text: str  # exactly as stored: its sha256 is the digest, so it must never be re-serialised
    media_type: str


def _fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - a presigned https URL from ECR
        data: bytes = resp.read()
    return data


class EcrImages:
    """ECR access for one registry (account + region). `fetch_url` reads a presigned layer URL (pluggable)."""

    def __init__(self, client: Any, fetch_url: Callable[[str], bytes] = _fetch_url) -> None:
        self._ecr = client
        self._fetch_url = fetch_url

    def manifest(self, ref: ImageRef, *, tag: str | None = None) -> Manifest:
        """The manifest of `ref`'s digest, or of `tag` in `ref`'s repository."""
        image_id = {"imageTag": tag} if tag else {"imageDigest": ref.digest}
        what = f"{ref.name}:{tag}" if tag else str(ref)
        try:
            resp = self._ecr.batch_get_image(
                registryId=ref.account,
                repositoryName=ref.repository,
                imageIds=[image_id],
                acceptedMediaTypes=list(MANIFEST_TYPES),
            )
        except self._ecr.exceptions.RepositoryNotFoundException:
            raise RegistryError(f"{what}: repository {ref.repository!r} does not exist") from None
        images = resp.get("images", [])
        if not images:
            reason = (resp.get("failures") or [{}])[0].get("failureCode", "ImageNotFound")
            raise RegistryError(f"{what}: not in the registry ({reason})")
        image = images[0]
        if tag is None and image["imageId"].get("imageDigest") != ref.digest:
            raise RegistryError(f"{what}: the registry answered with {image['imageId'].get('imageDigest')}")
        media_type = image.get("imageManifestMediaType") or _media_type_of(image["imageManifest"])
        return Manifest(text=image["imageManifest"], media_type=media_type)

    def add_tag(self, ref: ImageRef, manifest: Manifest, tag: str) -> None:
        """Tag the image whose manifest is `manifest` (already in `ref`'s repository) with `tag`."""
        try:
            self._ecr.put_image(
                registryId=ref.account,
                repositoryName=ref.repository,
                imageManifest=manifest.text,
                imageManifestMediaType=manifest.media_type,
                imageTag=tag,
            )
        except (self._ecr.exceptions.ImageAlreadyExistsException, self._ecr.exceptions.ImageTagAlreadyExistsException):
            # Fine only when the tag already names THIS image (a re-run of the same promotion).
            if self.manifest(ref, tag=tag).text != manifest.text:
                raise RegistryError(f"{ref.name}:{tag} already names another image (tags are immutable)") from None

    def images(self, ref: ImageRef) -> list[Image]:
        """Every image of `ref`'s repository: digest, tags, first push time, and (for an OCI 1.1 referrer) its
        subject, which DescribeImages reports as `subjectManifestDigest`."""
        out: list[Image] = []
        pages = self._ecr.get_paginator("describe_images").paginate(
            registryId=ref.account, repositoryName=ref.repository
        )
        for page in pages:
            out.extend(
                Image(
                    digest=d["imageDigest"],
                    tags=frozenset(d.get("imageTags") or ()),
                    pushed_at=d["imagePushedAt"],
                    subject=d.get("subjectManifestDigest"),
                )
                for d in page.get("imageDetails", [])
            )
        return out

    def manifests(self, ref: ImageRef, digests: Iterable[str]) -> dict[str, Manifest]:
        """The manifests of `digests` in `ref`'s repository, as stored (BatchGetImage takes 100 ids a call)."""
        wanted = sorted(set(digests))
        out: dict[str, Manifest] = {}
        for i in range(0, len(wanted), 100):
            resp = self._ecr.batch_get_image(
                registryId=ref.account,
                repositoryName=ref.repository,
                imageIds=[{"imageDigest": d} for d in wanted[i : i + 100]],
                acceptedMediaTypes=list(MANIFEST_TYPES),
            )
            for image in resp.get("images", []):
                text = image["imageManifest"]
                media_type = image.get("imageManifestMediaType") or _media_type_of(text)
                out[image["imageId"]["imageDigest"]] = Manifest(text=text, media_type=media_type)
        return out

    def lifecycle_policy(self, ref: ImageRef) -> Mapping[str, object] | None:
        """The repository's lifecycle policy (what may expire a release), or None when it has none."""
        try:
            text = self._ecr.get_lifecycle_policy(registryId=ref.account, repositoryName=ref.repository)
        except self._ecr.exceptions.LifecyclePolicyNotFoundException:
            return None
        policy: Mapping[str, object] = json.loads(text["lifecyclePolicyText"])
        return policy

    def blob(self, ref: ImageRef, digest: str) -> bytes:
        """A layer blob of `ref`'s repository (a signature payload, an attestation envelope)."""
        try:
            url = self._ecr.get_download_url_for_layer(
                registryId=ref.account, repositoryName=ref.repository, layerDigest=digest
            )["downloadUrl"]
        except self._ecr.exceptions.LayersNotFoundException:
            raise RegistryError(f"{ref.name}: blob {digest} is not in the repository") from None
        return self._fetch_url(url)


def _media_type_of(text: str) -> str:
    media_type = json.loads(text).get("mediaType")
    if not isinstance(media_type, str):
        raise RegistryError("manifest without a mediaType")
    return media_type
