"""Signed-image admission: the sigstore policy-controller admits the app namespace's pods only when every image
is either the project's own, signed keylessly by CI on main, or a third-party image pinned to a reviewed digest.

What CI produces (.github/workflows/ci.yml, job `images-release`, on pushes to main only): `cosign sign` (a
keyless signature in cosign's legacy `.sig` format, public-good Fulcio + Rekor), `cosign attest --type spdxjson`
(a signed SBOM attestation, predicate `https://spdx.dev/Document`) and `actions/attest-build-provenance` (SLSA
provenance, predicate `https://slsa.dev/provenance/v1`, pushed as a Sigstore bundle through the OCI referrers
API). The certificate of each names the workflow run's `job_workflow_ref`:
`https://github.com/<owner>/<repo>/.github/workflows/ci.yml@refs/heads/main`, issued to the GitHub Actions OIDC
issuer. So:
- policy `<prefix>-ci-signed`: each project repository's digests need the CI signature and a CI-signed SBOM
  attestation (exact issuer and subject: no regular expression to get wrong);
- policy `<prefix>-ci-provenance` (config `requireProvenance`, off by default: see stacks/config/workloads.py):
  the same images also need the SLSA provenance bundle (`signatureFormat: bundle`). A second policy because
  authorities within one policy are alternatives, while every policy matching an image must pass
  (ClusterImagePolicySpec docs, policy-controller v0.13.1);
- policy `<prefix>-third-party-pinned`: a static pass for exactly the third-party digests the stack config pins
  (Qdrant, ClamAV, ...): they publish no signature we could check, the digest was reviewed and scanned
  (`python -m stacks images`), and a glob equal to one digest admits nothing else.
With `no-match-policy: deny`, any other image in the namespace is refused.

Only namespaces labelled `policy.sigstore.dev/include: "true"` are judged (the chart's namespaceSelector): the
app namespace carries the label (namespaces.py), the add-ons namespace and kube-system do not, so a webhook outage
(`failurePolicy: Fail`) stops new app pods, never the control plane's own add-ons.

The webhook runs in the add-ons namespace: its `allow-controllers` NetworkPolicy already admits the control plane
(the `control` subnets) on 8443, the pod's webhook port (also the CRD conversion webhook), and allows 443 out
to anywhere but the metadata endpoints, through NAT: ECR (api.ecr / <account>.dkr.ecr, and S3 for blobs), STS for
IRSA, and Sigstore (tuf-repo-cdn.sigstore.dev for the trust root, rekor.sigstore.dev for transparency-log
lookups). Its IRSA role reads only the project's repositories (`ecr:GetAuthorizationToken` has no resource-level
permission); pulls from KMS-encrypted repositories need no KMS permission (ECR decrypts through its own grant).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.addons import _CONTAINER_SECURITY, CHARTS, _resources
from infra.workloads.helm_release import pinned_release
from infra.workloads.identity import Statement, WorkloadIdentity, WorkloadIdentityArgs
from infra.workloads.image_globs import compile_glob, glob_matches, normalize, pinned

if TYPE_CHECKING:
    from infra.workloads.args import WorkloadsArgs

RELEASE = "policy-controller"
API_VERSION = "policy.sigstore.dev/v1beta1"
KIND = "ClusterImagePolicy"
INCLUDE_LABEL = {"policy.sigstore.dev/include": "true"}
WEBHOOK_PORT = 8443  # the chart's webhook container port (Service 443 -> targetPort https)
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
FULCIO_URL = "https://fulcio.sigstore.dev"
REKOR_URL = "https://rekor.sigstore.dev"
SBOM_PREDICATE = "https://spdx.dev/Document"  # cosign attest --type spdxjson
PROVENANCE_PREDICATE = "https://slsa.dev/provenance/v1"  # actions/attest-build-provenance v2
# The signer: `https://github.com/<repository>/<workflow>@<ref>` (Fulcio's GitHub Actions SAN, job_workflow_ref).
SIGNER_WORKFLOW = re.compile(r"^\.github/workflows/[A-Za-z0-9_.-]+\.ya?ml$")
SIGNER_REF = re.compile(r"^refs/(heads|tags)/[A-Za-z0-9._/-]+$")
SIGNER_IDENTITY = re.compile(
    r"^https://github\.com/[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}/\.github/workflows/"
    r"[A-Za-z0-9_.-]+\.ya?ml@refs/(heads|tags)/[A-Za-z0-9._/-]+$"
)
REPLICAS = (1, 5)
# The webhook image the pinned chart ships (Chart.yaml artifacthub.io/images, values.yaml webhook.image), stated
# in our values so a chart bump is the only way it changes; the chart renders `repository@version` for a digest.
WEBHOOK_IMAGE = (
    "ghcr.io/sigstore/policy-controller/policy-controller",
    "sha256:0bcd60beb93f4427c29cf3a669743caf58490e98ded4380c33c09f092734a6ab",  # v0.13.1
)
ECR_READ = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
# The images' non-root user (ko/distroless `nonroot`, also chainguard's kubectl used by the chart's post-delete
# lease cleanup Job).
SECURITY = {**_CONTAINER_SECURITY, "runAsUser": 65532}


def signer_identity(repository: str, workflow: str = ".github/workflows/ci.yml", ref: str = "refs/heads/main") -> str:
    identity = f"https://github.com/{repository}/{workflow}@{ref}"
    if not SIGNER_IDENTITY.match(identity):
        raise ValueError(f"signer identity {identity!r} is not https://github.com/<owner>/<repo>/<workflow>@<ref>")
    return identity


@dataclass(frozen=True, kw_only=True)
class AdmissionSettings:
    """What the stack config decides (stacks/program.py `workloads_args`); plain values, known at preview."""

    # image -> its repository in the shared registry (infra/registry.py: `<host>/<namePrefix>-<image>`) and ARN
    repository_urls: Mapping[str, str]
    repository_arns: Mapping[str, str]
    signer: str  # signer_identity(...)
    issuer: str = GITHUB_ACTIONS_ISSUER
    require_provenance: bool = False
    replicas: int = 2


@dataclass(frozen=True, kw_only=True)
class ImageAdmissionArgs:
    provider: k8s.Provider
    namespace: str  # where the controller runs (the add-ons namespace; never itself opted in)
    settings: AdmissionSettings
    third_party_images: Sequence[str]  # digest-pinned images of the opted-in namespace outside the registry
    policy_prefix: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    role_name_prefix: str
    tags: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()


def validate(args: ImageAdmissionArgs) -> None:
    a = args.settings
    if not a.repository_urls or set(a.repository_urls) != set(a.repository_arns):
        raise ValueError("ImageAdmissionArgs.repository_urls/repository_arns: the same, non-empty set of images")
    if not SIGNER_IDENTITY.match(a.signer):
        raise ValueError(f"ImageAdmissionArgs.signer: {a.signer!r} is not a GitHub Actions workflow identity")
    if a.issuer != GITHUB_ACTIONS_ISSUER:
        raise ValueError(f"ImageAdmissionArgs.issuer: CI signs with {GITHUB_ACTIONS_ISSUER} (got {a.issuer!r})")
    loose = [i for i in args.third_party_images if not pinned(i)]
    if loose:
        raise ValueError(
            f"ImageAdmissionArgs.third_party_images: {loose} are not pinned by digest; admission refuses them"
        )
    lo, hi = REPLICAS
    if not lo <= a.replicas <= hi:
        raise ValueError(f"ImageAdmissionArgs.replicas: {a.replicas} not in {lo}..{hi}")


def app_images(a: WorkloadsArgs) -> list[str]:
    """Every image the Workloads component runs in the app namespace (the opted-in one)."""
    specs = [a.api, a.worker, a.embedder, a.qdrant, a.snapshots, a.frontend, a.clamav]
    extra = [a.model_sync_image, a.canary_image]
    return sorted({s.image for s in specs if s is not None} | {i for i in extra if i})


def third_party_images(images: Sequence[str], repository_urls: Mapping[str, str]) -> list[str]:
    """The images no project glob covers: each needs the static pass, hence a digest."""
    globs = project_globs(repository_urls)
    return [i for i in images if not any(glob_matches(g, i) for g in globs)]


def webhook_problems(spec: Mapping[str, Any]) -> list[str]:
    """What policy-controller's validating webhook refuses in a ClusterImagePolicy spec beyond the CRD schema
    (pkg/apis/policy/v1beta1/clusterimagepolicy_validation.go at v0.13.1), for the fields we use."""
    problems: list[str] = []
    images = list(spec.get("images") or [])
    if not images:
        problems.append("spec.images: missing")
    for i, image in enumerate(images):
        try:
            compile_glob(str(image.get("glob") or ""))
        except ValueError as err:
            problems.append(f"spec.images[{i}].glob: {err}")
    if spec.get("mode") not in (None, "enforce", "warn"):
        problems.append(f"spec.mode: {spec.get('mode')!r} is not enforce or warn")
    authorities = list(spec.get("authorities") or [])
    if not authorities:  # fail-on-empty-authorities: true (our configData)
        problems.append("spec.authorities: missing")
    for i, a in enumerate(authorities):
        where = f"spec.authorities[{i}]"
        kinds = [k for k in ("key", "keyless", "static") if a.get(k) is not None]
        if len(kinds) != 1:
            problems.append(f"{where}: exactly one of key, keyless, static (got {kinds})")
        if a.get("static") is not None:
            if a["static"].get("action") not in ("pass", "fail"):
                problems.append(f"{where}.static.action: {a['static'].get('action')!r} is not pass or fail")
            clash = [k for k in ("attestations", "source", "ctlog", "rfc3161timestamp") if a.get(k)]
            if clash:
                problems.append(f"{where}: static excludes {clash}")
        keyless = a.get("keyless")
        if keyless is not None:
            if (keyless.get("url") is None) == (keyless.get("ca-cert") is None):
                problems.append(f"{where}.keyless: exactly one of url, ca-cert")
            identities = list(keyless.get("identities") or [])
            if not identities:
                problems.append(f"{where}.keyless.identities: missing")
            for j, ident in enumerate(identities):
                for exact in ("issuer", "subject"):
                    if ident.get(exact) and ident.get(f"{exact}RegExp"):
                        problems.append(f"{where}.keyless.identities[{j}]: {exact} and {exact}RegExp both set")
        if a.get("signatureFormat") not in (None, "legacy", "bundle"):
            problems.append(f"{where}.signatureFormat: {a.get('signatureFormat')!r} is not legacy or bundle")
        if a.get("signatureFormat") == "bundle" and keyless is None:
            problems.append(f"{where}: the bundle format needs a keyless authority")
        for j, att in enumerate(a.get("attestations") or []):
            if not att.get("name"):
                problems.append(f"{where}.attestations[{j}].name: missing")
            if not re.match(r"^https?://\S+$", str(att.get("predicateType") or "")):
                problems.append(f"{where}.attestations[{j}].predicateType: use the predicate's URI")
    return problems


def project_globs(urls: Mapping[str, str]) -> list[str]:
    """One glob per repository, digests only: the chart's mutating webhook resolves a tag to its digest before
    the validating webhook runs, and staging/prod deploy digests. `*` cannot cross a `/` or reach another
    repository (`<prefix>-api@...` never matches `<prefix>-api-x@...`)."""
    return [f"{url}@sha256:*" for _, url in sorted(urls.items())]


def chart_values(a: AdmissionSettings, service_account: pulumi.Input[str]) -> dict[str, Any]:
    """Our values for the pinned chart (read against its values.yaml and templates at that version)."""
    return {
        "installCRDs": True,
        "cosign": {"webhookTimeoutSeconds": {"mutating": 25, "validating": 25}},
        "webhook": {
            "image": {"repository": WEBHOOK_IMAGE[0], "version": WEBHOOK_IMAGE[1], "pullPolicy": "IfNotPresent"},
            "replicaCount": a.replicas,
            "failurePolicy": "Fail",
            # policy-controller pkg/config/store.go: an image that no policy matches is refused.
            "configData": {"no-match-policy": "deny", "fail-on-empty-authorities": "true"},
            "namespaceSelector": {
                "matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in INCLUDE_LABEL.items()]
            },
            "serviceAccount": {"create": False, "name": service_account},
            "priorityClass": "system-cluster-critical",
            "resources": _resources("100m", "128Mi", "500m", "512Mi"),
            # The chart's naming: `securityContext` is the pod's, `podSecurityContext` the container's; each is
            # rendered only with `enabled: true`.
            "securityContext": {
                "enabled": True,
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "podSecurityContext": {"enabled": True, **SECURITY},
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        },
        "leasescleanup": {
            "priorityClass": "system-cluster-critical",
            "resources": _resources("10m", "64Mi", "200m", "128Mi"),
            # kubectl writes its discovery cache under $HOME, which this Job (unlike the webhook) gets no volume
            # for: a writable root filesystem, everything else as locked down.
            "podSecurityContext": {"enabled": True, **SECURITY, "readOnlyRootFilesystem": False},
        },
    }


class ImageAdmission(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    identity: WorkloadIdentity
    policies: dict[str, k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: ImageAdmissionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate(args)
        super().__init__("visionrag:workloads:ImageAdmission", name, None, opts)
        a, conf = args, args.settings
        self._k8s = a.provider
        statements: list[Statement] = [
            {"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
            {
                "Sid": "ReadProjectRepositories",
                "Effect": "Allow",
                "Action": list(ECR_READ),
                "Resource": [arn for _, arn in sorted(conf.repository_arns.items())],
            },
        ]
        self.identity = WorkloadIdentity(
            f"{name}-identity",
            WorkloadIdentityArgs(
                provider=a.provider,
                namespace=a.namespace,
                service_account=RELEASE,
                role_name=f"{a.role_name_prefix}-{RELEASE}"[:64],
                oidc_provider_arn=a.oidc_provider_arn,
                oidc_issuer=a.oidc_issuer,
                statements=statements,
                tags=a.tags,
                kubernetes_api_access=True,  # it watches policies, ConfigMaps and Secrets and reads workloads
                depends_on=a.depends_on,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.release = pinned_release(
            f"{name}-release",
            RELEASE,
            CHARTS[RELEASE],
            namespace=a.namespace,
            values=chart_values(conf, self.identity.service_account.metadata.name),
            provider=a.provider,
            parent=self,
            depends_on=[*a.depends_on, self.identity],
        )
        self.policies = {}
        keyless = {"url": FULCIO_URL, "identities": [{"issuer": conf.issuer, "subject": conf.signer}]}
        globs = [{"glob": g} for g in project_globs(conf.repository_urls)]
        self._policy(
            name,
            f"{a.policy_prefix}-ci-signed",
            globs,
            [
                {
                    "name": "ci-signature",
                    "keyless": keyless,
                    "ctlog": {"url": REKOR_URL},
                    "attestations": [{"name": "sbom", "predicateType": SBOM_PREDICATE}],
                }
            ],
        )
        if conf.require_provenance:
            self._policy(
                name,
                f"{a.policy_prefix}-ci-provenance",
                globs,
                [
                    {
                        "name": "ci-provenance",
                        "signatureFormat": "bundle",
                        "keyless": keyless,
                        "attestations": [{"name": "slsa-provenance", "predicateType": PROVENANCE_PREDICATE}],
                    }
                ],
            )
        if a.third_party_images:
            self._policy(
                name,
                f"{a.policy_prefix}-third-party-pinned",
                [{"glob": normalize(i)} for i in sorted(set(a.third_party_images))],
                [{"name": "reviewed-digest", "static": {"action": "pass"}}],
            )
        self.register_outputs({"release": self.release.name, "policies": sorted(self.policies)})

    def _policy(self, name: str, policy: str, images: list[Any], authorities: list[dict[str, Any]]) -> None:
        self.policies[policy] = k8s.apiextensions.CustomResource(
            f"{name}-{policy}",
            api_version=API_VERSION,
            kind=KIND,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy),
            spec={"mode": "enforce", "images": images, "authorities": authorities},
            # The CRD and its defaulting/validating webhooks come with the release.
            opts=pulumi.ResourceOptions(parent=self, provider=self._k8s, depends_on=[self.release]),
        )
