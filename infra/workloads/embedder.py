"""The ColPali embedder Deployment on the GPU node group.

- Placement: tolerates exactly the GPU taint and *requires* the GPU node label, so it never lands (or waits
  for) a CPU node, and nothing else lands on the GPU nodes without tolerating the taint.
- `nvidia.com/gpu: 1` requested and limited.
- Weights: an init container (python + boto3; the worker image unless configured) copies them from the models
  bucket into an emptyDir with the embedder's read-only IRSA role; the server loads them offline from there.
- A startup probe allows 15 minutes for the model load before liveness applies.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.addons import gpu_toleration
from infra.workloads.availability import spread
from infra.workloads.await_policy import EMBEDDER as EMBEDDER_AWAIT
from infra.workloads.container import SECRETS_DIR, ContainerSpec, Probe, Resources, empty_dir, pod_spec, secrets_volume
from infra.workloads.deployment import AppDeploymentArgs
from infra.workloads.model_sync import SCRIPT
from infra.workloads.spec import WorkloadSpec

HTTP_PORT = 7000
# The embedder's cold start the startup probe tolerates (model load; weights are synced by the init container
# before it). One owner: the worker sizes its job retry budget to outlast it (WORKER_EMBEDDER_COLD_START_S,
# infra/workloads/pod_env.py), so a job that meets a restarting embedder waits instead of dead-lettering.
STARTUP_BUDGET_S = 900
STARTUP_PERIOD_S = 10
MODELS_DIR = "/models"
SYNC_RESOURCES = Resources(cpu_request="500m", cpu_limit="2", memory_request="512Mi", memory_limit="2Gi")


def gpu_affinity(label: tuple[str, str]) -> k8s.core.v1.AffinityArgs:
    key, value = label
    return k8s.core.v1.AffinityArgs(
        node_affinity=k8s.core.v1.NodeAffinityArgs(
            required_during_scheduling_ignored_during_execution=k8s.core.v1.NodeSelectorArgs(
                node_selector_terms=[
                    k8s.core.v1.NodeSelectorTermArgs(
                        match_expressions=[
                            k8s.core.v1.NodeSelectorRequirementArgs(key=key, operator="In", values=[value])
                        ]
                    )
                ]
            )
        )
    )


def _toleration(taint: tuple[str, str, str]) -> k8s.core.v1.TolerationArgs:
    t = gpu_toleration(taint)
    return k8s.core.v1.TolerationArgs(key=t["key"], operator=t["operator"], value=t["value"], effect=t["effect"])


def embedder_args(
    *,
    provider: k8s.Provider,
    namespace: str,
    spec: WorkloadSpec,
    sync_image: str,
    models_bucket: pulumi.Input[str],
    model: str,
    region: str,
    gpu_taint: tuple[str, str, str],
    gpu_label: tuple[str, str],
    service_account: pulumi.Input[str],
    env: Mapping[str, pulumi.Input[str]],
    gpu_nodes_max: int,
    # Optional Secrets (Secret name -> settings file), e.g. the Sentry DSN when the stack has one.
    extra_secrets: Mapping[str, str] | None = None,
    depends_on: tuple[pulumi.Resource, ...] = (),
) -> AppDeploymentArgs:
    model_dir = f"{MODELS_DIR}/{model}"
    secret_files = dict(extra_secrets or {})
    sync = ContainerSpec(
        name="model-sync",
        image=sync_image,
        resources=SYNC_RESOURCES,
        command=["python", "-c", SCRIPT],
        env={"MODEL_BUCKET": models_bucket, "MODEL_PREFIX": model, "MODEL_DIR": model_dir, "AWS_REGION": region},
        mounts={"models": MODELS_DIR},
        run_to_completion=True,
    )
    server = ContainerSpec(
        name="embedder",
        image=spec.image,
        resources=Resources(
            cpu_request=spec.resources.cpu_request,
            cpu_limit=spec.resources.cpu_limit,
            memory_request=spec.resources.memory_request,
            memory_limit=spec.resources.memory_limit,
            gpus=1,
        ),
        ports={"http": HTTP_PORT},
        env={
            **env,
            "EMBEDDER_MODEL": model_dir,
            "EMBEDDER_DEVICE": "cuda",
            "EMBEDDER_PORT": str(HTTP_PORT),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": "/cache/huggingface",
            # app/embedder/settings.py reads the settings files (sentry_dsn) from here, like the api and worker.
            **({"SETTINGS_SECRETS_DIR": SECRETS_DIR} if secret_files else {}),
        },
        startup=Probe(
            port=HTTP_PORT,
            path="/health",
            period_s=STARTUP_PERIOD_S,
            failure_threshold=STARTUP_BUDGET_S // STARTUP_PERIOD_S,
            timeout_s=5,
        ),
        readiness=Probe(port=HTTP_PORT, path="/health", period_s=10, timeout_s=5),
        liveness=Probe(port=HTTP_PORT, period_s=15, failure_threshold=4),
        mounts={"cache": "/cache", "shm": "/dev/shm"},  # noqa: S108 - a memory emptyDir
        read_only_mounts={"models": MODELS_DIR, **({"secrets": SECRETS_DIR} if secret_files else {})},
    )
    return AppDeploymentArgs(
        provider=provider,
        namespace=namespace,
        workload="embedder",
        role="embedder",
        replicas=spec.replicas,
        max_replicas=spec.max_replicas,
        service_ports={"http": HTTP_PORT},
        # A new embedder costs a node (maybe from zero) and a model load: scale down slowly.
        scale_down_stabilization_s=600,
        # One GPU per pod: a surge pod needs a free GPU node, which exists only below the node group's maximum.
        surge=gpu_nodes_max > (spec.max_replicas or spec.replicas),
        # GPU node from zero + multi-GB image + weights uploaded after the first `up`: never block `up` on it.
        await_policy=EMBEDDER_AWAIT,
        pod=pod_spec(
            service_account=service_account,
            containers=[server],
            init_containers=[sync],
            volumes=[
                empty_dir("models", "40Gi"),
                empty_dir("cache", "2Gi"),
                empty_dir("shm", "1Gi", memory=True),  # torch shared memory; counts against the memory limit
                *([secrets_volume("secrets", secret_files)] if secret_files else []),
            ],
            affinity=gpu_affinity(gpu_label),
            tolerations=[_toleration(gpu_taint)],
            topology_spread=spread("embedder"),
        ),
        depends_on=depends_on,
    )
