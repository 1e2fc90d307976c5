"""Promotion of image digests into a stage: every digest verified first, then tagged; all or nothing.

For each image: the digest exists in its ECR repository, the verifier accepts its signature and attestations, the
cosign companion images exist, its SLSA provenance referrer exists (stacks/supply_chain/referrers.py), and the
repository's lifecycle policy would not expire it right after (stacks/supply_chain/retention.py). Only when EVERY
image passes is the digest tagged `release-<stage>-<time>` (infra.registry.release_tag), its `sha256-<hex>.sig` /
`sha256-<hex>.att` images the same tag + `.sig` / `.att`, and its (newest) provenance referrer the tag + `.prov`:
one image per suffix of infra.registry.RELEASE_ARTIFACT_SUFFIXES, so the lifecycle's release windows (K releases =
K x ARTIFACTS_PER_RELEASE images) hold and a release and its evidence expire together. A refusal tags nothing; the
caller then writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from infra.registry import release_tag
from policies.ecr_lifecycle import Image
from stacks.supply_chain.ecr_images import Manifest, RegistryError
from stacks.supply_chain.referrers import provenance_referrers
from stacks.supply_chain.refs import ImageRef, RefError, parse_ecr_ref
from stacks.supply_chain.retention import window_problem
from stacks.supply_chain.verifier import PROVENANCE_PREDICATE, Verifier


class TagWriter(Protocol):
    def manifest(self, ref: ImageRef, *, tag: str | None = None) -> Manifest: ...

    def add_tag(self, ref: ImageRef, manifest: Manifest, tag: str) -> None: ...

    def images(self, ref: ImageRef) -> list[Image]: ...

    def manifests(self, ref: ImageRef, digests: Iterable[str]) -> dict[str, Manifest]: ...

    def lifecycle_policy(self, ref: ImageRef) -> Mapping[str, object] | None: ...


class PromotionRefused(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Promoted:
    release_tag: str
    tagged: dict[str, list[str]]  # image -> the "<repo>:<tag>" names written


def promote_digests(
    images: Mapping[str, str], *, stage: str, when: datetime, registry: TagWriter, verifier: Verifier
) -> Promoted:
    try:
        tag = release_tag(stage, when)
    except ValueError as exc:
        raise PromotionRefused([f"--stack: {exc}"]) from None
    problems: list[str] = []
    planned: dict[str, list[tuple[ImageRef, Manifest, str]]] = {}
    for image, text in images.items():
        try:
            ref = parse_ecr_ref(text)
            digest = registry.manifest(ref)
        except (RefError, RegistryError) as exc:
            problems.append(f"{image}: {exc}")
            continue
        found = verifier.problems(ref)
        problems.extend(f"{image}: {ref}: {p}" for p in found)
        if found:
            continue
        try:
            sig = registry.manifest(ref, tag=ref.sig_tag)
            att = registry.manifest(ref, tag=ref.att_tag)
        except RegistryError as exc:
            problems.append(f"{image}: {exc}")
            continue
        inventory = registry.images(ref)
        provenance = provenance_referrers(registry, ref, inventory)
        if not provenance:
            problems.append(
                f"{image}: {ref}: provenance: no {PROVENANCE_PREDICATE} bundle referring to it in {ref.repository} "
                "(actions/attest-build-provenance with push-to-registry; untagged referrers expire)"
            )
            continue
        by_tag = {t: i.digest for i in inventory for t in i.tags}
        marks = {ref.digest: tag, provenance[0].digest: f"{tag}.prov"}
        marks |= {by_tag[t]: f"{tag}{sfx}" for t, sfx in ((ref.sig_tag, ".sig"), (ref.att_tag, ".att")) if t in by_tag}
        policy = registry.lifecycle_policy(ref)
        if why := window_problem(
            stage=stage, digest=ref.digest, planned=marks, images=inventory, policy=policy, now=when
        ):
            problems.append(f"{image}: {ref}: {why}")
            continue
        planned[image] = [
            (ref, digest, tag),
            (ref, sig, f"{tag}.sig"),
            (ref, att, f"{tag}.att"),
            (ref, provenance[0].manifest, f"{tag}.prov"),
        ]
    if problems:
        raise PromotionRefused(problems)
    tagged: dict[str, list[str]] = {}
    for image, steps in planned.items():
        for ref, manifest, name in steps:
            registry.add_tag(ref, manifest, name)
            tagged.setdefault(image, []).append(f"{ref.name}:{name}")
    return Promoted(release_tag=tag, tagged=tagged)
