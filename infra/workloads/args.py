"""WorkloadsArgs: what the Workloads component needs from the platform and the stack config, and its checks.

The program maps stack config and platform outputs onto it (stacks/program.py `workloads_args`). Platform values
(ARNs, names, endpoints) may be `pulumi.Input`s; everything that decides which resources exist is a plain value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra.frontend_secret import SECRET_KEY as FRONTEND_SECRET
from infra.workloads.frontend import FrontendSettings
from infra.workloads.image_admission import AdmissionSettings
from infra.workloads.quotas import ApiQuotas
from infra.workloads.rate_limits import ApiRateLimits
from infra.workloads.restore_drill import RestoreDrillSettings
from infra.workloads.spec import WorkloadSpec

BUCKETS = ("pages", "snapshots", "models", "audit")
# Required secrets; "llm-api-key" and "sentry-dsn" are optional (present only when the stack sets them).
SECRETS = ("qdrant-api-key", "cache-auth", "jwt")


@dataclass(frozen=True, kw_only=True)
class WorkloadsArgs:
    provider: k8s.Provider
    tier: str
    region: str
    role_name_prefix: str
    tags: dict[str, str] = field(default_factory=dict)
    # cluster
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    storage_class_name: pulumi.Input[str]
    gpu_taint: tuple[str, str, str]
    gpu_label: tuple[str, str]
    gpu_nodes_max: int
    install_metrics_server: bool = True
    # network / edge / cache
    vpc_id: pulumi.Input[str]
    # Subnet CIDRs by role (config-derived, infra.network.subnet_layout, so known at preview). Every NetworkPolicy
    # ipBlock and TRUSTED_PROXIES is built from these, never from the VPC CIDR: pods are in the VPC too.
    alb_cidrs: Sequence[str]  # the ALB's (public) subnets
    control_plane_cidrs: Sequence[str]  # the EKS cluster subnets (control-plane ENIs)
    scraper_cidrs: Sequence[str]  # the managed Prometheus scraper's subnets
    pod_cidrs: Sequence[str]  # the node/pod subnets (VPC CNI)
    cache_cidrs: Sequence[str]  # the cache's subnets
    target_group_arns: Mapping[str, pulumi.Input[str]]
    cache_endpoint: pulumi.Input[str]
    cache_port: pulumi.Input[int]
    # data: bucket names/ARNs keyed pages/snapshots/models/audit, KMS keys, Secrets Manager secrets
    bucket_names: Mapping[str, pulumi.Input[str]]
    bucket_arns: Mapping[str, pulumi.Input[str]]
    s3_key_arn: pulumi.Input[str]
    secrets_key_arn: pulumi.Input[str]
    secret_names: Mapping[str, pulumi.Input[str]]
    secret_arns: Sequence[pulumi.Input[str]]
    # workloads
    api: WorkloadSpec
    worker: WorkloadSpec
    embedder: WorkloadSpec
    qdrant: WorkloadSpec
    snapshots: WorkloadSpec
    frontend: WorkloadSpec | None = None
    # The malware scanner (infra/workloads/clamav.py); None: none deployed and the api scans nothing.
    clamav: WorkloadSpec | None = None
    # The monthly restore drill CronJob (infra/workloads/restore_drill.py); None: none (the tier default outside prod).
    restore_drill: RestoreDrillSettings | None = None
    # Required with `frontend`: its stack settings (infra/workloads/frontend.py); secret_names then holds
    # "frontend-auth" (infra/frontend_secret.py) and secret_arns its ARN.
    frontend_settings: FrontendSettings | None = None
    canary_image: str | None = None
    api_command: Sequence[str]
    worker_command: Sequence[str]
    snapshot_command: Sequence[str]
    snapshot_schedule: str
    snapshot_retention: int
    qdrant_storage_gib: int
    qdrant_replication_factor: int
    model_sync_image: str
    embedder_model: str
    log_level: str = "info"
    allowed_origins: Sequence[str] = ()
    # The api's rate limits (stack config workloads.rateLimits); None: the app's own defaults.
    api_rate_limits: ApiRateLimits | None = None
    # The api's daily quotas, tenant claim and moderation (stack config workloads.quotas / llmModeration);
    # None: the app's own defaults (no quotas, moderation off).
    api_quotas: ApiQuotas | None = None
    # Tracing of the api, worker and embedder: the sampling ratio of new traces; None: tracing off.
    trace_sample_ratio: float | None = None
    # A managed OTLP/HTTP collector (validated in stacks/config/observability.py); None: with tracing on, the
    # in-cluster collector (infra/workloads/otel_collector.py) is deployed and used.
    otlp_endpoint: str | None = None
    # Signed-image admission for the app namespace (infra/workloads/image_admission.py); None: none (dev).
    image_admission: AdmissionSettings | None = None
    namespace: str = "visionrag"
    system_namespace: str = "visionrag-system"


def validate(a: WorkloadsArgs) -> None:
    """ValueError naming the field, before any resource is registered (the program's config checks come first)."""
    missing = [b for b in BUCKETS if b not in a.bucket_names or b not in a.bucket_arns]
    if missing:
        raise ValueError(f"WorkloadsArgs.bucket_names/bucket_arns: missing {missing}; need {', '.join(BUCKETS)}")
    missing = [s for s in SECRETS if s not in a.secret_names]
    if missing:
        raise ValueError(f"WorkloadsArgs.secret_names: missing {missing}; need {', '.join(SECRETS)}")
    if a.frontend and (a.frontend_settings is None or FRONTEND_SECRET not in a.secret_names):
        raise ValueError(
            f"WorkloadsArgs.frontend: needs frontend_settings and secret_names[{FRONTEND_SECRET!r}] (the Auth.js and "
            "OIDC client secrets)"
        )
    needed = ["api"] + (["frontend"] if a.frontend else []) + (["api-canary"] if a.canary_image else [])
    missing = [t for t in needed if t not in a.target_group_arns]
    if missing:
        raise ValueError(f"WorkloadsArgs.target_group_arns: missing {missing} (keys: {', '.join(a.target_group_arns)})")
    if a.trace_sample_ratio is not None and not 0 <= a.trace_sample_ratio <= 1:
        raise ValueError(f"WorkloadsArgs.trace_sample_ratio: {a.trace_sample_ratio} is outside 0..1")
    if a.otlp_endpoint is not None:
        parts = urlsplit(a.otlp_endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"WorkloadsArgs.otlp_endpoint: {a.otlp_endpoint!r} is not an http(s) URL")
    if not a.secret_arns:
        raise ValueError("WorkloadsArgs.secret_arns: the SecretStore role needs the project's secret ARNs")
    if a.qdrant.replicas < 1 or a.qdrant_replication_factor > a.qdrant.replicas:
        raise ValueError(
            f"WorkloadsArgs.qdrant_replication_factor: {a.qdrant_replication_factor} needs at least as many "
            f"qdrant replicas (got {a.qdrant.replicas})"
        )
    for name, spec in (("api", a.api), ("worker", a.worker), ("embedder", a.embedder), ("qdrant", a.qdrant)):
        if spec.replicas < 1:
            raise ValueError(f"WorkloadsArgs.{name}.replicas: must be >= 1 (got {spec.replicas})")
