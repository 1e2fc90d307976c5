"""The workloads' arguments from the stack config: the one mapping of config onto `WorkloadsArgs`.

`stacks/program.py` (the composition root) calls `workloads_args` with the platform outputs; tests build the
workloads the same way through it. Components never read config.
"""

from __future__ import annotations

from typing import Any

from infra.registry import IMAGES as REGISTRY_IMAGES
from infra.registry import registry_host, repository_name
from infra.workloads import WorkloadsArgs, WorkloadSpec
from infra.workloads.container import Resources
from infra.workloads.image_admission import AdmissionSettings, signer_identity
from infra.workloads.quotas import ApiQuotas
from infra.workloads.rate_limits import ApiRateLimits
from stacks.config import StackConfig
from stacks.config.workloads import WorkloadConfig


def _spec(w: WorkloadConfig, *, gpus: int = 0) -> WorkloadSpec:
    r = w.resources
    return WorkloadSpec(
        image=w.image,
        replicas=w.replicas,
        max_replicas=w.max_replicas,
        resources=Resources(
            cpu_request=r.cpu_request,
            cpu_limit=r.cpu_limit,
            memory_request=r.memory_request,
            memory_limit=r.memory_limit,
            gpus=gpus,
        ),
    )


def workloads_args(cfg: StackConfig, **platform: Any) -> WorkloadsArgs:
    """WorkloadsArgs from the workloads config plus the platform outputs (`platform`: the infra-side fields)."""
    w = cfg.workloads
    return WorkloadsArgs(
        tier=cfg.tier,
        region=cfg.region,
        role_name_prefix=cfg.physical_name(),
        tags=cfg.resource_tags(),
        kubernetes_version=cfg.cluster.kubernetes_version,
        gpu_nodes_max=cfg.cluster.gpu_nodes.max_size,
        api=_spec(w.api),
        worker=_spec(w.worker),
        embedder=_spec(w.embedder),
        qdrant=_spec(w.qdrant),
        snapshots=_spec(w.snapshots),
        frontend=_spec(w.frontend) if w.frontend else None,
        clamav=_spec(w.clamav) if w.clamav else None,
        canary_image=w.canary.image if w.canary else None,
        api_command=w.api_command,
        worker_command=w.worker_command,
        snapshot_command=w.snapshot_command,
        snapshot_schedule=w.snapshot_schedule,
        snapshot_retention=w.snapshot_retention,
        restore_drill=w.restore_drill.settings(),
        qdrant_storage_gib=w.qdrant_storage_gib,
        qdrant_replication_factor=w.qdrant_replication_factor,
        model_sync_image=w.model_sync_image or w.worker.image,
        embedder_model=w.embedder_model,
        log_level=w.log_level,
        allowed_origins=w.allowed_origins,
        api_rate_limits=ApiRateLimits(**w.rate_limits.model_dump()),
        api_quotas=ApiQuotas(**w.quotas.model_dump(), moderation=w.llm_moderation),
        trace_sample_ratio=cfg.observability.trace_sample_ratio if cfg.observability.tracing else None,
        otlp_endpoint=cfg.observability.otlp_endpoint,
        image_admission=_admission(cfg),
        **platform,
    )


def _admission(cfg: StackConfig) -> AdmissionSettings | None:
    """Signed-image admission from config: the shared registry's repositories and the CI signer identity."""
    ia = cfg.workloads.image_admission
    repository = cfg.admission_repository()
    if not ia.enabled or repository is None:
        return None
    region = cfg.registry.region or cfg.region
    names = {image: repository_name(cfg.name_prefix, image) for image in REGISTRY_IMAGES}
    return AdmissionSettings(
        repository_urls={i: f"{registry_host(cfg.registry.account_id, region)}/{n}" for i, n in names.items()},
        repository_arns={i: f"arn:aws:ecr:{region}:{cfg.registry.account_id}:repository/{n}" for i, n in names.items()},
        signer=signer_identity(repository, ia.workflow, ia.ref),
        require_provenance=ia.require_provenance,
        replicas=ia.replicas,
    )
