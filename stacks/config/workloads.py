"""Kubernetes workload settings: images, replicas, resources, the snapshot schedule and the canary."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.ci_runners import check_github_repository
from infra.workloads.image_admission import REPLICAS as ADMISSION_REPLICAS
from infra.workloads.image_admission import SIGNER_REF, SIGNER_WORKFLOW
from infra.workloads.quotas import (
    MAX_LLM_TOKENS_PER_DAY,
    MAX_METRIC_TENANTS,
    MAX_REQUESTS_PER_DAY,
    MAX_UPLOAD_MB_PER_DAY,
    MAX_UPLOAD_PAGES_PER_DAY,
    check_tenant_claim,
)
from infra.workloads.rate_limits import MAX_PER_IP_PER_MINUTE, check_limit
from stacks.config.base import StrictModel
from stacks.config.restore_drill import RestoreDrillConfig

# registry/repository[:tag][@sha256:<64 hex>]; the tag part is refused when digests are required.
IMAGE_RE = re.compile(
    r"^(?P<repo>[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
WORKLOADS = ("api", "worker", "embedder", "qdrant", "frontend", "snapshots", "clamav")
# Workloads a HorizontalPodAutoscaler may scale: qdrant shards are placed by the cluster itself and the snapshot
# job is a CronJob, so `maxReplicas` on those would be silently meaningless.
AUTOSCALED = ("api", "worker", "embedder", "frontend")
_CPU = re.compile(r"^(\d+(\.\d{1,3})?|\d+m)$")
_MEMORY = re.compile(r"^\d+(Ki|Mi|Gi|Ti)$")
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def cpu_millis(q: str) -> int:
    return int(q[:-1]) if q.endswith("m") else round(float(q) * 1000)


def memory_bytes(q: str) -> int:
    return int(q[:-2]) * _UNITS[q[-2:]]


def check_image(ref: str, *, require_digest: bool) -> str:
    m = IMAGE_RE.match(ref)
    if not m:
        raise ValueError(f"{ref!r} is not a valid image reference")
    if m["tag"] == "latest":
        raise ValueError(f"{ref!r} uses ':latest'; pin a version tag or a digest")
    if require_digest and not m["digest"]:
        raise ValueError(f"{ref!r} is not pinned by digest; this tier needs '<repo>@sha256:<64 hex>'")
    if not m["digest"] and not m["tag"]:
        raise ValueError(f"{ref!r} has neither a tag nor a digest")
    return ref


class Resources(StrictModel):
    # All four are required: a container without limits can starve its node, one without requests is
    # scheduled blind. Quantities are the Kubernetes forms ("500m", "2", "512Mi", "16Gi").
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    @field_validator("cpu_request", "cpu_limit")
    @classmethod
    def _cpu(cls, v: str) -> str:
        if not _CPU.match(v) or cpu_millis(v) <= 0:
            raise ValueError(f"{v!r} is not a CPU quantity like '500m' or '2'")
        return v

    @field_validator("memory_request", "memory_limit")
    @classmethod
    def _memory(cls, v: str) -> str:
        if not _MEMORY.match(v) or memory_bytes(v) <= 0:
            raise ValueError(f"{v!r} is not a memory quantity like '512Mi' or '4Gi' (units Ki, Mi, Gi, Ti)")
        return v

    @model_validator(mode="after")
    def _request_within_limit(self) -> Resources:
        if cpu_millis(self.cpu_request) > cpu_millis(self.cpu_limit):
            raise ValueError(f"cpuRequest: {self.cpu_request!r} exceeds cpuLimit {self.cpu_limit!r}")
        if memory_bytes(self.memory_request) > memory_bytes(self.memory_limit):
            raise ValueError(f"memoryRequest: {self.memory_request!r} exceeds memoryLimit {self.memory_limit!r}")
        return self


class WorkloadConfig(StrictModel):
    image: str
    replicas: int = Field(ge=0)
    resources: Resources
    max_replicas: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _hpa(self) -> WorkloadConfig:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) must be >= replicas ({self.replicas})")
        return self


class AuthConfig(StrictModel):
    """An external OIDC issuer the api validates bearer tokens against (AUTH_ISSUER_URL / AUDIENCE / JWKS_URL).

    Unset (the default): the stack builds its own Amazon Cognito user pool (infra/identity.py, `identity` config)
    and uses that; there is no mode without an issuer."""

    issuer_url: str = Field(pattern=r"^https://\S+$")
    audience: str = Field(min_length=1)
    jwks_url: str = Field(pattern=r"^https://\S+$")


class RateLimitsConfig(StrictModel):
    """The api's rate limits (app/api/ratelimit.py); the syntax and bounds are infra/workloads/rate_limits.py's."""

    per_ip_per_minute: int = Field(ge=1, le=MAX_PER_IP_PER_MINUTE)  # every protected route, per client IP
    search: str  # per identity, like "60/minute" or "10/second;500/hour"
    chat: str
    upload: str

    @field_validator("search", "chat", "upload")
    @classmethod
    def _limit(cls, v: str) -> str:
        check_limit(v)
        return v


class QuotasConfig(StrictModel):
    """The api's daily quotas (app/api/quotas.py); bounds are infra/workloads/quotas.py's. Per UTC day: search,
    chat and LLM tokens per tenant (the `tenantClaim` value; unset: per subject), upload pages and MiB per identity."""

    search_per_day: int = Field(ge=1, le=MAX_REQUESTS_PER_DAY)
    chat_per_day: int = Field(ge=1, le=MAX_REQUESTS_PER_DAY)
    llm_tokens_per_day: int = Field(ge=1, le=MAX_LLM_TOKENS_PER_DAY)
    upload_pages_per_day: int = Field(ge=1, le=MAX_UPLOAD_PAGES_PER_DAY)
    upload_mb_per_day: int = Field(ge=1, le=MAX_UPLOAD_MB_PER_DAY)
    metric_max_tenants: int = Field(default=50, ge=0, le=MAX_METRIC_TENANTS)
    tenant_claim: str | None = None

    @field_validator("tenant_claim")
    @classmethod
    def _claim(cls, v: str | None) -> str | None:
        if v is not None:
            check_tenant_claim(v)
        return v


class CanaryConfig(StrictModel):
    image: str
    weight: int = Field(ge=0, le=100)


class ImageAdmissionConfig(StrictModel):
    """Signed-image admission (infra/workloads/image_admission.py): the sigstore policy-controller admits the app
    namespace's images only when CI signed them. The signer is `https://github.com/<githubRepository>/<workflow>@
    <ref>`; githubRepository defaults to delivery.githubRepository (stack.py fills it in)."""

    enabled: bool  # tier default: off in dev, on in staging and prod (a floor there)
    github_repository: str | None = None  # "owner/name" whose CI signs the images
    workflow: str = ".github/workflows/ci.yml"  # the workflow that signs (ci.yml, job images-release)
    ref: str = "refs/heads/main"  # only main's runs sign (ci.yml: images-release runs on pushes to main)
    # Also require the SLSA provenance bundle from actions/attest-build-provenance (a second policy). Off by
    # default: that bundle is signed by public-good Sigstore only for a public repository (GitHub's own instance
    # signs for a private one), and it is an untagged OCI referrer, which the registry's untagged-expiry rule
    # would delete under a running release (docs/delivery.md, "Admission"). The signature and the SBOM
    # attestation, both cosign's tagged `.sig`/`.att`, are always required.
    require_provenance: bool = False
    replicas: int = Field(default=2, ge=ADMISSION_REPLICAS[0], le=ADMISSION_REPLICAS[1])

    _repository = field_validator("github_repository")(check_github_repository)

    @field_validator("workflow")
    @classmethod
    def _workflow(cls, v: str) -> str:
        if not SIGNER_WORKFLOW.match(v):
            raise ValueError(f"{v!r} is not a workflow path like '.github/workflows/ci.yml'")
        return v

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        if not SIGNER_REF.match(v):
            raise ValueError(f"{v!r} is not a git ref like 'refs/heads/main' or 'refs/tags/<tag>'")
        return v


class WorkloadsConfig(StrictModel):
    require_digests: bool
    api: WorkloadConfig
    worker: WorkloadConfig
    embedder: WorkloadConfig
    qdrant: WorkloadConfig
    frontend: WorkloadConfig | None = None
    snapshots: WorkloadConfig
    # The malware scanner uploads are streamed to (infra/workloads/clamav.py); unset: no scanner, the api stores
    # uploads unscanned (dev only: stack.py refuses that elsewhere). Image: docker.io/clamav/clamav, tag@digest.
    clamav: WorkloadConfig | None = None
    qdrant_replication_factor: int = Field(default=1, ge=1)
    qdrant_storage_gib: int = Field(default=50, ge=1)
    snapshot_schedule: str = "17 3 * * *"
    snapshot_retention: int = Field(default=7, ge=1)
    api_command: list[str] = Field(
        # The api image's entrypoint: gunicorn.conf.py names the app and loads (and checks) the Settings.
        default_factory=lambda: ["gunicorn", "--config", "/srv/gunicorn.conf.py"]
    )
    allowed_origins: list[str] = Field(default_factory=list)
    rate_limits: RateLimitsConfig  # tier defaults in tiers.py
    quotas: QuotasConfig  # tier defaults in tiers.py
    # Moderation of the chat question and answer (app/api/llm.py); tier defaults: off in dev, on in staging/prod.
    llm_moderation: bool
    canary: CanaryConfig | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # app/worker/__main__.py: the arq worker plus its metrics endpoint (the worker image's entrypoint).
    worker_command: list[str] = Field(default_factory=lambda: ["python", "-m", "app.worker"])
    # The app issue's snapshot job: snapshots every qdrant node and uploads to the snapshots bucket.
    snapshot_command: list[str] = Field(default_factory=lambda: ["python", "-m", "app.ops.snapshots", "create"])
    # Image of the embedder's init container that copies the weights from the models bucket (python + boto3).
    # Unset: the worker image, which already has both and is pinned the same way.
    model_sync_image: str | None = None
    # Prefix in the models bucket (and directory under /models) holding the ColPali weights.
    embedder_model: str = Field(default="vidore/colpali-v1.3-hf", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
    auth: AuthConfig | None = None
    image_admission: ImageAdmissionConfig  # tier defaults in tiers.py
    restore_drill: RestoreDrillConfig  # tier defaults in tiers.py (on in prod only)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: object) -> object:
        # A typo'd or invented workload ("embeder", "redis") must name the workloads that exist, not just fail.
        if isinstance(data, dict):
            known = {f for f in cls.model_fields} | {
                info.alias for info in cls.model_fields.values() if info.alias is not None
            }
            for key in data:
                if key not in known:
                    raise ValueError(
                        f"{key}: unknown workload or key; workloads: {', '.join(WORKLOADS)}; other keys: "
                        + ", ".join(
                            sorted(info.alias or f for f, info in cls.model_fields.items() if f not in WORKLOADS)
                        )
                    )
        return data

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for o in v:
            if not re.match(r"^https?://[^*\s/]+$", o) and o != "*":
                raise ValueError(f"{o!r} is not an origin (scheme://host[:port], no path)")
        return v

    @model_validator(mode="after")
    def _images(self) -> WorkloadsConfig:
        for name in WORKLOADS:
            w = getattr(self, name)
            if w is not None:
                try:
                    check_image(w.image, require_digest=self.require_digests)
                except ValueError as e:
                    raise ValueError(f"{name}.image: {e}") from None
        for name in WORKLOADS:
            w = getattr(self, name)
            if w is not None and w.max_replicas is not None and name not in AUTOSCALED:
                raise ValueError(
                    f"{name}.maxReplicas: only {', '.join(AUTOSCALED)} are autoscaled (got {w.max_replicas})"
                )
        if self.model_sync_image is not None:
            try:
                check_image(self.model_sync_image, require_digest=self.require_digests)
            except ValueError as e:
                raise ValueError(f"modelSyncImage: {e}") from None
        if self.canary is not None:
            try:
                check_image(self.canary.image, require_digest=self.require_digests)
            except ValueError as e:
                raise ValueError(f"canary.image: {e}") from None
        if self.qdrant_replication_factor > max(self.qdrant.replicas, 1):
            raise ValueError(
                f"qdrantReplicationFactor ({self.qdrant_replication_factor}) exceeds qdrant.replicas "
                f"({self.qdrant.replicas})"
            )
        if self.quotas.tenant_claim is not None and self.auth is None:
            # The stack's Cognito pool deploys no pre-token-generation trigger, and only a V2_0 trigger (Essentials
            # or Plus plan) can put a custom claim into access tokens: every caller would silently be its own tenant.
            raise ValueError(
                f"quotas.tenantClaim: {self.quotas.tenant_claim!r} needs an external issuer (workloads.auth) whose "
                "access tokens carry it; allowed: unset tenantClaim with the stack's Cognito user pool"
            )
        if self.frontend is not None and self.auth is not None:
            # The frontend signs users in with the stack's Cognito app client (id + secret from infra/identity.py);
            # an external IdP has no client the stack knows the secret of.
            raise ValueError(
                "frontend: needs the stack's Cognito user pool as its OIDC issuer; allowed: unset auth "
                "(the default), or unset frontend when auth names an external issuer"
            )
        return self
