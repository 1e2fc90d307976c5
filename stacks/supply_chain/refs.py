"""Image references promotion accepts: an ECR repository and a digest, never a tag.

cosign stores an image's signature and attestations in the SAME repository under tags derived from the digest
(`sha256-<hex>.sig`, `sha256-<hex>.att`; cosign pkg/oci/remote `SignatureTag` / `AttestationTag`), so a
promotion that keeps an image must keep those two images as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ECR_REF = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9])\.amazonaws\.com"
    r"/(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"@(?P<digest>sha256:[a-f0-9]{64})$"
)


class RefError(ValueError):
    """Not an ECR digest reference; the message names the value and the allowed form."""


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    account: str
    region: str
    repository: str
    digest: str

    @property
    def registry(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com"

    @property
    def name(self) -> str:
        """The repository as cosign writes it into a signature's `docker-reference`."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}"

    @property
    def sig_tag(self) -> str:
        return companion_tag(self.digest, "sig")

    @property
    def att_tag(self) -> str:
        return companion_tag(self.digest, "att")


def companion_tag(digest: str, suffix: str) -> str:
    algorithm, hex_ = digest.split(":", 1)
    return f"{algorithm}-{hex_}.{suffix}"


def parse_ecr_ref(ref: str) -> ImageRef:
    m = ECR_REF.match(ref)
    if not m:
        raise RefError(
            f"{ref!r} is not an ECR digest reference; allowed: "
            "'<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<64 hex>' (promotion reads ECR)"
        )
    return ImageRef(**m.groupdict())
