"""The promote role's ECR permissions: every call promotion makes is in PROMOTE_ACTIONS, and docs/delivery.md (which
the account bootstrap that creates the role follows) names each one. moto allows any call; real ECR answers
AccessDenied for an action the role lacks, so a missing one would only show on the first real promotion."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from stacks.supply_chain.cosign_key import KeyVerifier
from stacks.supply_chain.ecr_images import PROMOTE_ACTIONS, EcrImages
from stacks.supply_chain.promotion import promote_digests
from stacks.supply_chain.refs import ImageRef
from tests.delivery.oci_fixtures import REPOS, BlobEcrImages, Blobs, release

ROOT = Path(__file__).resolve().parents[2]


def test_every_call_of_a_promotion_is_an_action_the_role_is_granted(
    ecr: Any, blobs: Blobs, key: ec.EllipticCurvePrivateKey
) -> None:
    refs = {repo.removeprefix("visionrag-"): release(ecr, blobs, repo, f"{repo} v1", key) for repo in REPOS}
    calls: set[str] = set()
    ecr.meta.events.register("before-call.ecr", lambda model, **_: calls.add(f"ecr:{model.name}"))
    registry = BlobEcrImages(ecr, blobs)  # serves blobs itself: moto has no GetDownloadUrlForLayer

    done = promote_digests(
        {k: str(v) for k, v in refs.items()},
        stage="staging",
        when=datetime.now(UTC),
        registry=registry,
        verifier=KeyVerifier(images=registry, public_key=key.public_key()),
    )

    assert set(done.tagged) == set(refs)
    assert {"ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetLifecyclePolicy", "ecr:PutImage"} <= calls
    assert calls <= set(PROMOTE_ACTIONS), sorted(calls - set(PROMOTE_ACTIONS))


def test_reading_a_blob_is_get_download_url_for_layer() -> None:
    """What cosign (and the key-based verifier) does for every .sig / .att layer and provenance bundle."""

    class Client:
        class exceptions:  # the shape of a boto3 client's `exceptions` attribute
            LayersNotFoundException = LookupError

        calls: list[str] = []

        def get_download_url_for_layer(self, **_: Any) -> dict[str, str]:
            self.calls.append("ecr:GetDownloadUrlForLayer")
            return {"downloadUrl": "https://example.invalid/blob"}

    client = Client()
    ref = ImageRef(account="123456789012", region="us-east-1", repository="visionrag-api", digest="sha256:" + "a" * 64)
    assert EcrImages(client, fetch_url=lambda url: b"blob").blob(ref, "sha256:" + "b" * 64) == b"blob"
    assert client.calls and set(client.calls) <= set(PROMOTE_ACTIONS)


def test_docs_name_every_action_of_the_promote_role() -> None:
    text = (ROOT / "docs" / "delivery.md").read_text(encoding="utf-8")
    roles = re.search(r"\*\*Roles\.\*\*(.*?)\n\n", text, re.S)
    assert roles, "docs/delivery.md has no **Roles.** paragraph"
    missing = [a for a in PROMOTE_ACTIONS if f"`{a}`" not in roles[1] and f"`{a.removeprefix('ecr:')}`" not in roles[1]]
    assert not missing, f"docs/delivery.md **Roles.** does not grant the promote role {missing}"
