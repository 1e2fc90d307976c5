"""The app's stateless Deployments (api and its canary, worker, embedder, frontend): their arguments, built from the
stack's workload settings and the pods' environment contract (infra/workloads/pod_env.py).

`Workloads` (infra/workloads/workloads.py) creates them after Qdrant, the scanner and the identities exist; this
module only decides what each pod gets, so the orchestrator stays a list of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import pulumi

from infra.workloads.api import api_args
from infra.workloads.args import WorkloadsArgs
from infra.workloads.deployment import AppDeploymentArgs
from infra.workloads.embedder import embedder_args
from infra.workloads.frontend import frontend_args
from infra.workloads.otel_collector import endpoint as collector_endpoint
from infra.workloads.pod_env import api_env, app_env, audit_env, embedder_env, tracing_env, worker_env
from infra.workloads.spec import WorkloadSpec
from infra.workloads.worker import worker_args


def in_cluster_collector(endpoint: str | None) -> tuple[str, int] | None:
    """(namespace, port) of an in-cluster OTLP collector; None for none or a managed one (443 egress covers it)."""
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").split(".")
    if len(host) < 3 or host[2] != "svc":
        return None
    return host[1], parts.port or (443 if parts.scheme == "https" else 80)


def tracing_endpoint(a: WorkloadsArgs) -> str | None:
    """Where the pods send traces: a managed collector, else the in-cluster one; None with tracing off."""
    if a.trace_sample_ratio is None:
        return None
    return a.otlp_endpoint or collector_endpoint(a.system_namespace)


def tracing(a: WorkloadsArgs, service: str) -> dict[str, str] | None:
    endpoint = tracing_endpoint(a)
    if endpoint is None or a.trace_sample_ratio is None:
        return None
    return tracing_env(endpoint=endpoint, service=service, sample_ratio=a.trace_sample_ratio)


def app_deployment_args(
    a: WorkloadsArgs,
    *,
    qdrant_url: str,
    scanner: tuple[str, int] | None,
    service_account: Callable[[str], pulumi.Input[str]],
    depends_on: Sequence[pulumi.Resource],
    gpu_plugin: pulumi.Resource,
) -> dict[str, AppDeploymentArgs]:
    """Workload name -> its Deployment's arguments; the canary and the frontend only where the stack has them."""
    ns = a.namespace
    shared = app_env(
        tier=a.tier,
        log_level=a.log_level,
        region=a.region,
        namespace=ns,
        pages_bucket=a.bucket_names["pages"],
        s3_key_arn=a.s3_key_arn,
        qdrant_url=qdrant_url,
    )
    api = api_env(
        shared,
        audit_bucket=a.bucket_names["audit"],
        allowed_origins=a.allowed_origins,
        alb_cidrs=a.alb_cidrs,
        rate_limits=a.api_rate_limits,
        quotas=a.api_quotas,
        tracing=tracing(a, "visionrag-api"),
        scanner=scanner,
    )
    # The api, the worker and the embedder report errors to Sentry (setup_sentry) when the sentry_dsn file exists.
    sentry_files = {"sentry-dsn": "sentry_dsn"} if "sentry-dsn" in a.secret_names else {}
    # Only the api calls the LLM: with no key there is no file, the api builds no chat model, /chat is 503.
    llm_files = {"llm-api-key": "openai_api_key"} if "llm-api-key" in a.secret_names else {}
    deps = tuple(depends_on)
    api_sa = service_account("api")
    builds = {
        "api": api_args(
            provider=a.provider,
            namespace=ns,
            workload="api",
            spec=a.api,
            command=a.api_command,
            env=api,
            service_account=api_sa,
            extra_secrets={**sentry_files, **llm_files},
            depends_on=deps,
        ),
        "worker": worker_args(
            provider=a.provider,
            namespace=ns,
            spec=a.worker,
            command=a.worker_command,
            env={
                **worker_env(
                    shared,
                    qdrant_replication_factor=a.qdrant_replication_factor,
                    tracing=tracing(a, "visionrag-worker"),
                ),
                # Its collection-migrate init container (same env) is an audited ops command.
                **audit_env(audit_bucket=a.bucket_names["audit"], namespace=ns, service_account="worker"),
            },
            service_account=service_account("worker"),
            extra_secrets=sentry_files,
            depends_on=deps,
        ),
        "embedder": embedder_args(
            provider=a.provider,
            namespace=ns,
            spec=a.embedder,
            sync_image=a.model_sync_image,
            models_bucket=a.bucket_names["models"],
            model=a.embedder_model,
            region=a.region,
            gpu_taint=a.gpu_taint,
            gpu_label=a.gpu_label,
            gpu_nodes_max=a.gpu_nodes_max,
            service_account=service_account("embedder"),
            env=embedder_env(tier=a.tier, log_level=a.log_level, tracing=tracing(a, "visionrag-embedder")),
            extra_secrets=sentry_files,
            # The GPU pods also wait for the device plugin that advertises nvidia.com/gpu.
            depends_on=(*deps, gpu_plugin),
        ),
    }
    if a.canary_image:
        canary = WorkloadSpec(image=a.canary_image, replicas=1, resources=a.api.resources)
        builds["api-canary"] = api_args(
            provider=a.provider,
            namespace=ns,
            workload="api-canary",
            spec=canary,
            command=a.api_command,
            env=api,
            service_account=api_sa,
            extra_secrets={**sentry_files, **llm_files},
            autoscale=False,
            depends_on=deps,
        )
    if a.frontend and a.frontend_settings:
        builds["frontend"] = frontend_args(
            provider=a.provider,
            namespace=ns,
            spec=a.frontend,
            settings=a.frontend_settings,
            service_account="frontend",
            depends_on=deps,
        )
    return builds
