"""Signed-image admission (infra/workloads/image_admission.py): where the pack config makes it mandatory (staging,
prod), the sigstore policy-controller must be installed failing closed, every namespace the program runs pods in
must be opted in, and every image of those pods must be covered by a ClusterImagePolicy that either requires
CI's keyless signature (exact GitHub Actions issuer, a workflow identity as subject) or statically passes exactly
one reviewed third-party digest. Globs are matched with policy-controller's own semantics (image_globs.py).
Images referenced without a digest are left to `k8s-image-pinning` (mandatory digests in staging and prod).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import Policy, PolicyResource, Severity, StackValidationArgs

from infra.workloads.image_globs import DIGEST, compile_glob, glob_matches, normalize
from policies.helm_values import chart_defaults, coalesce
from policies.rules._base import Report, as_list, config_schema, get, knob, of_type, raw, stack_policy
from policies.rules.kubernetes import NAMESPACE, POD_SPEC_PATHS, containers, pod_spec

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CIP = "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy"
CHART = "policy-controller"
INCLUDE = "policy.sigstore.dev/include"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# Fulcio's GitHub Actions SAN: https://github.com/<owner>/<repo>/.github/workflows/<file>@<ref>
SIGNER = r"^https://github\.com/[^/]+/[^/]+/\.github/workflows/ci\.ya?ml@refs/heads/main$"


def _keyless_ok(authority: Any, issuer: str, signer: re.Pattern[str]) -> str | None:
    """Why a keyless authority does not pin CI's identity, or None when it does."""
    identities = as_list(get(authority, "keyless", "identities"))
    if not identities:
        return "keyless authority lists no identities"
    for ident in identities:
        if get(ident, "issuerRegExp") or get(ident, "subjectRegExp"):
            return "identity uses issuerRegExp/subjectRegExp; pin issuer and subject exactly"
        if get(ident, "issuer") != issuer:
            return f"identity issuer {get(ident, 'issuer')!r} is not {issuer!r}"
        if not signer.match(str(get(ident, "subject") or "")):
            return f"identity subject {get(ident, 'subject')!r} does not match {signer.pattern!r}"
    return None


def _policy_kind(cip: PolicyResource, issuer: str, signer: re.Pattern[str], report: Report) -> str | None:
    """'signed', 'static-pass' or None (and the reasons reported) for one ClusterImagePolicy."""
    name = get(cip.props, "metadata", "name") or cip.name
    spec = get(cip.props, "spec") or {}
    if get(spec, "mode") not in (None, "enforce"):
        report(f"ClusterImagePolicy {name}: mode {get(spec, 'mode')!r} only warns; use enforce")
        return None
    globs = [str(get(i, "glob") or "") for i in as_list(get(spec, "images"))]
    for g in globs:
        try:
            compile_glob(g)
        except ValueError as err:
            report(f"ClusterImagePolicy {name}: {err}")
            return None
    authorities = as_list(get(spec, "authorities"))
    if not authorities:
        report(f"ClusterImagePolicy {name}: no authorities")
        return None
    if all(get(a, "static", "action") == "pass" for a in authorities):
        loose = [g for g in globs if "*" in g or not DIGEST.search(g)]
        if loose:
            report(f"ClusterImagePolicy {name}: a static pass must name single digests, not {loose}")
            return None
        return "static-pass"
    # Authorities are alternatives: every one must be CI's identity, or the weakest admits.
    for a in authorities:
        if get(a, "keyless") is None:
            report(f"ClusterImagePolicy {name}: authority {get(a, 'name')!r} is not keyless CI signing")
            return None
        why = _keyless_ok(a, issuer, signer)
        if why:
            report(f"ClusterImagePolicy {name}: {why}")
            return None
    return "signed"


def _release_findings(release: PolicyResource) -> Iterator[str]:
    props = raw(release.props)
    defaults = chart_defaults(CHART, str(props.get("version") or "")) or {}
    merged = coalesce(props.get("values") if isinstance(props.get("values"), dict) else {}, defaults)
    webhook = merged.get("webhook") or {}
    if webhook.get("failurePolicy") != "Fail":
        yield f"policy-controller webhook.failurePolicy is {webhook.get('failurePolicy')!r}; it must fail closed (Fail)"
    if (webhook.get("configData") or {}).get("no-match-policy") != "deny":
        yield "policy-controller webhook.configData.no-match-policy is not 'deny': unmatched images would run"


def _images_by_namespace(resources: list[PolicyResource]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for r in resources:
        if r.resource_type not in POD_SPEC_PATHS:
            continue
        ns = str(get(r.props, "metadata", "namespace") or "default")
        for _, c in containers(pod_spec(r.resource_type, r.props)):
            if get(c, "image"):
                found.setdefault(ns, set()).add(str(get(c, "image")))
    return found


def _enforced(args: StackValidationArgs, report: Report) -> None:
    issuer = str(knob(args, "issuer", GITHUB_ISSUER))
    signer = re.compile(str(knob(args, "signerPattern", SIGNER)))
    workloads = _images_by_namespace(args.resources)
    if not workloads:
        return  # a plan that runs no pods has nothing to admit
    releases = [r for r in of_type(args.resources, HELM_RELEASE) if get(r.props, "chart") == CHART]
    if not releases:
        report("no sigstore policy-controller release: nothing verifies image signatures at admission")
        return
    for release in releases:
        for finding in _release_findings(release):
            report(finding, release.urn)
    controller_ns = {str(get(r.props, "namespace")) for r in releases}
    included = {
        str(get(n.props, "metadata", "name"))
        for n in of_type(args.resources, NAMESPACE)
        if (get(n.props, "metadata", "labels") or {}).get(INCLUDE) == "true"
    }
    kinds: dict[str, list[tuple[list[str], str]]] = {"signed": [], "static-pass": []}
    for cip in of_type(args.resources, CIP):
        kind = _policy_kind(cip, issuer, signer, lambda m, urn=None, c=cip: report(m, urn or c.urn))
        if kind:
            kinds[kind].append(([str(get(i, "glob")) for i in as_list(get(cip.props, "spec", "images"))], kind))
    for ns, images in sorted(workloads.items()):
        if ns in controller_ns:
            continue  # the controller never gates its own namespace (it could not start again)
        if ns not in included:
            report(f"namespace {ns} runs pods but is not labelled {INCLUDE}=true: admission never judges them")
            continue
        # A reference without a digest is k8s-image-pinning's finding (staging and prod require digests; one owner
        # per finding), and policy-controller's mutating webhook resolves a tag to its digest before validating.
        for image in sorted(i for i in images if DIGEST.search(i)):
            signed = any(glob_matches(g, image) for globs, _ in kinds["signed"] for g in globs)
            passed = any(g == normalize(image) for globs, _ in kinds["static-pass"] for g in globs)
            if not (signed or passed):
                report(
                    f"image {image} in namespace {ns} is covered by no ClusterImagePolicy requiring CI's signature "
                    "(issuer and subject pinned) nor by a static pass of its exact digest: no-match-policy refuses it"
                )


POLICIES: list[Policy] = [
    stack_policy(
        name="k8s-image-admission-enforced",
        description="Signed-image admission: a sigstore policy-controller that fails closed and denies unmatched "
        "images, every namespace with pods opted in, and every image covered by a ClusterImagePolicy requiring "
        "CI's keyless signature (exact issuer, CI workflow subject) or a static pass of its exact digest.",
        severity=Severity.HIGH,
        remediation="Enable workloads.imageAdmission (infra/workloads/image_admission.py); sign new images in CI "
        "(.github/workflows/ci.yml) or pin a third-party image by digest in stack config.",
        validate=_enforced,
        schema=config_schema(
            {
                "issuer": {"type": "string", "default": GITHUB_ISSUER},
                "signerPattern": {"type": "string", "default": SIGNER},
            }
        ),
        tags=["kubernetes", "supply-chain"],
    ),
]
