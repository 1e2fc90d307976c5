"""Image references and globs exactly as the sigstore policy-controller matches them, with no Pulumi import.

Shared by the admission component (infra/workloads/image_admission.py builds its ClusterImagePolicies from these)
and the policy pack (policies/rules/image_admission.py judges the recorded policies with the same semantics), so
"which policy covers this image" is computed one way.

Sources (sigstore/policy-controller v0.13.1, the app version of the pinned chart):
- pkg/apis/glob/glob.go: a glob matches the whole normalised name; `*` is any run of non-`/` characters, `**` any
  run of characters; `.` is literal; only `[a-zA-Z0-9-_:/*.@]` may appear.
- the name it matches is go-containerregistry's `name.ParseReference(image).Name()`: the registry made explicit
  (`docker.io` becomes `index.docker.io`, a one-part Docker Hub repository gets `library/`) and, for a digest
  reference, the tag dropped (`repo:tag@sha256:x` -> `repo@sha256:x`); a reference with neither gets `:latest`.
"""

from __future__ import annotations

import re

DOCKER_HUB = "index.docker.io"
_VALID_GLOB = re.compile(r"^[a-zA-Z0-9\-_:/*.@]+$")
DIGEST = re.compile(r"@sha256:[a-f0-9]{64}$")


def normalize(image: str) -> str:
    """The name policy-controller matches globs against (go-containerregistry `Reference.Name()`)."""
    ref, _, digest = image.partition("@")
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, rest
    else:
        registry, repo = DOCKER_HUB, ref
    if registry == "docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repo.split(":", 1)[0]:
        repo = f"library/{repo}"
    # The tag separator is the last ':' after the last '/' (a registry port sits before the first '/').
    last = repo.rsplit("/", 1)
    name, colon, tag = last[-1].partition(":")
    path = "/".join([*last[:-1], name])
    if digest:
        return f"{registry}/{path}@{digest}"
    return f"{registry}/{path}:{tag if colon else 'latest'}"


def compile_glob(glob: str) -> re.Pattern[str]:
    """pkg/apis/glob/glob.go `Compile` (the `*` and `*/*` shorthands included); ValueError on an invalid glob."""
    if glob == "*/*":
        glob = f"{DOCKER_HUB}/*/*"
    if glob == "*":
        glob = f"{DOCKER_HUB}/library/*"
    if not _VALID_GLOB.match(glob):
        raise ValueError(f"invalid glob {glob!r}: only letters, digits and - _ : / * . @ are allowed")
    pattern = glob.replace(".", r"\.").replace("**", "#").replace("*", "[^/]*").replace("#", ".*")
    return re.compile(f"^{pattern}$")


def glob_matches(glob: str, image: str) -> bool:
    """Whether policy-controller applies a policy with this glob to `image` (glob.go `Match`: the normalised
    name first, then the reference as written when it differs)."""
    pattern = compile_glob(glob)
    name = normalize(image)
    return bool(pattern.match(name)) or (name != image and bool(pattern.match(image)))


def pinned(image: str) -> bool:
    return bool(DIGEST.search(image))
