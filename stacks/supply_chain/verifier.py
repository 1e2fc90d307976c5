"""What a release must carry before it may be promoted, and the verifier that checks it with the real cosign CLI.

Every image ci.yml releases (`images-release`) carries, on its digest:
  - a cosign keyless signature (`cosign sign`, identity = ci.yml on main, issuer = GitHub Actions OIDC),
  - an SPDX SBOM attestation (`cosign attest --type spdxjson`, predicate `https://spdx.dev/Document`),
  - SLSA build provenance (`actions/attest-build-provenance`, predicate `https://slsa.dev/provenance/v1`).
cosign maps `--type spdxjson` -> https://spdx.dev/Document and `--type slsaprovenance1` ->
https://slsa.dev/provenance/v1 (cosign pkg/cosign/attestation, `PredicateTypeMap`).

Where each lives: cosign writes the signature and the SBOM attestation under the `sha256-<hex>.sig` / `.att` tags;
attest-build-provenance pushes a Sigstore bundle as an OCI 1.1 *referrer* of the digest (actions/attest-build-provenance
issue #62), which cosign reads only with `--new-bundle-format` (sigstore/cosign PR #3889, cosign >= 2.4.1).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from stacks.supply_chain.refs import ImageRef

SBOM_PREDICATE = "https://spdx.dev/Document"
PROVENANCE_PREDICATE = "https://slsa.dev/provenance/v1"
REQUIRED_PREDICATES: tuple[str, ...] = (SBOM_PREDICATE, PROVENANCE_PREDICATE)
GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"


class Verifier(Protocol):
    def problems(self, ref: ImageRef) -> list[str]:
        """Why `ref` may not be promoted (no signature, a bad one, a missing attestation); empty when it may."""
        ...


def ci_identity(repository: str, workflow: str = "ci.yml", ref: str = "refs/heads/main") -> str:
    """The certificate identity of a keyless signature made by `workflow` on `ref` (the Fulcio cert's SAN is the
    workflow's `job_workflow_ref` as a URL)."""
    return f"https://github.com/{repository}/.github/workflows/{workflow}@{ref}"


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=300)  # noqa: S603 - argv built by commands(), no shell


@dataclass(frozen=True, kw_only=True)
class CosignCliVerifier:
    """Keyless verification with the cosign binary (deploy.yml installs it pinned). Registry credentials come from
    the docker config `amazon-ecr-login` writes; the Sigstore trust root from cosign's TUF client."""

    identity: str
    issuer: str = GITHUB_OIDC_ISSUER
    cosign: str = "cosign"
    run: Runner = _run

    def commands(self, ref: ImageRef) -> list[tuple[str, list[str]]]:
        who = ["--certificate-identity", self.identity, "--certificate-oidc-issuer", self.issuer]
        target = str(ref)
        return [
            ("signature", [self.cosign, "verify", *who, target]),
            (f"attestation {SBOM_PREDICATE}", [self.cosign, "verify-attestation", "--type", "spdxjson", *who, target]),
            (
                f"attestation {PROVENANCE_PREDICATE}",
                [self.cosign, "verify-attestation", "--type", "slsaprovenance1", "--new-bundle-format", *who, target],
            ),
        ]

    def problems(self, ref: ImageRef) -> list[str]:
        out = []
        for what, argv in self.commands(ref):
            res = self.run(argv)
            if res.returncode != 0:
                last = (res.stderr or res.stdout).strip().splitlines()
                out.append(f"{what}: cosign refused ({last[-1] if last else f'exit {res.returncode}'})")
        return out
