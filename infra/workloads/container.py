"""The hardened container and pod spec every workload is built from.

One place decides what "hardened" means (restricted Pod Security Standard plus what checkov and the team's
checklist ask for), so no workload can forget a field: non-root fixed UID/GID, no privilege escalation, read-only
root filesystem with emptyDirs for the paths that must be writable, all capabilities dropped, RuntimeDefault
seccomp, requests and limits on every container, no service-account token, no host namespaces or hostPath.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

# High, fixed IDs: above the range images and node users use (checkov CKV_K8S_40 asks for >= 10000), and the
# same everywhere so files written to a volume by one pod are readable by the next revision.
RUN_AS_UID = 10001
RUN_AS_GID = 10001
GPU_RESOURCE = "nvidia.com/gpu"
SECRETS_DIR = "/var/run/secrets/visionrag"
TMP_SIZE = "256Mi"


@dataclass(frozen=True, kw_only=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    gpus: int = 0
    # Disk a pod writes (its disk-backed emptyDirs, logs) that the scheduler must find on the node; None: no claim.
    ephemeral_storage_request: str | None = None

    def __post_init__(self) -> None:
        for f in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
            if not getattr(self, f):
                raise ValueError(f"Resources.{f}: every container needs cpu/memory requests and limits (got empty)")
        if self.gpus < 0:
            raise ValueError(f"Resources.gpus: must be >= 0 (got {self.gpus})")

    def to_args(self) -> k8s.core.v1.ResourceRequirementsArgs:
        requests = {"cpu": self.cpu_request, "memory": self.memory_request}
        limits = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        if self.gpus:
            # Extended resources cannot be overcommitted: Kubernetes requires request == limit.
            requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(self.gpus)
        if self.ephemeral_storage_request:
            requests["ephemeral-storage"] = self.ephemeral_storage_request
        return k8s.core.v1.ResourceRequirementsArgs(requests=requests, limits=limits)


@dataclass(frozen=True, kw_only=True)
class Probe:
    """An exec probe when `command` is set, else an HTTP probe when `path` is set, else a TCP probe."""

    port: int
    path: str | None = None
    # For servers whose health is a protocol exchange, not HTTP (clamd answers PING with PONG on its TCP port).
    command: Sequence[str] | None = None
    period_s: int = 10
    failure_threshold: int = 3
    timeout_s: int = 3
    initial_delay_s: int = 0

    def to_args(self) -> k8s.core.v1.ProbeArgs:
        action: dict[str, object] = (
            {"exec_": k8s.core.v1.ExecActionArgs(command=list(self.command))}
            if self.command
            else {"http_get": k8s.core.v1.HTTPGetActionArgs(path=self.path, port=self.port)}
            if self.path
            else {"tcp_socket": k8s.core.v1.TCPSocketActionArgs(port=self.port)}
        )
        return k8s.core.v1.ProbeArgs(
            period_seconds=self.period_s,
            failure_threshold=self.failure_threshold,
            timeout_seconds=self.timeout_s,
            initial_delay_seconds=self.initial_delay_s or None,
            **action,  # type: ignore[arg-type]
        )


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    name: str
    image: str
    resources: Resources
    command: Sequence[str] | None = None
    args: Sequence[str] | None = None
    ports: Mapping[str, int] = field(default_factory=dict)
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    liveness: Probe | None = None
    readiness: Probe | None = None
    startup: Probe | None = None
    # Extra writable mounts (name -> path); /tmp is always mounted.
    mounts: Mapping[str, str] = field(default_factory=dict)
    read_only_mounts: Mapping[str, str] = field(default_factory=dict)
    # Init containers and job containers run to completion: they are not probed.
    run_to_completion: bool = False

    def __post_init__(self) -> None:
        if (
            not self.image
            or self.image.endswith(":latest")
            or ("@" not in self.image and ":" not in self.image.rsplit("/", 1)[-1])
        ):
            raise ValueError(f"ContainerSpec.image: {self.image!r} must be pinned by a tag or digest (never :latest)")
        if not self.run_to_completion and (self.liveness is None or self.readiness is None):
            raise ValueError(f"ContainerSpec.{self.name}: long-running containers need liveness and readiness probes")


def container_security_context() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_UID,
        run_as_group=RUN_AS_GID,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container(spec: ContainerSpec) -> k8s.core.v1.ContainerArgs:
    mounts = [k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]  # noqa: S108 - an emptyDir, not the host's
    mounts += [k8s.core.v1.VolumeMountArgs(name=n, mount_path=p) for n, p in spec.mounts.items()]
    mounts += [
        k8s.core.v1.VolumeMountArgs(name=n, mount_path=p, read_only=True) for n, p in spec.read_only_mounts.items()
    ]
    return k8s.core.v1.ContainerArgs(
        name=spec.name,
        image=spec.image,
        # Always: a re-pushed tag (dev) is picked up, and for digests it only costs a manifest HEAD; it also
        # makes the kubelet check the pull credentials instead of reusing an image another pod pulled.
        image_pull_policy="Always",
        command=list(spec.command) if spec.command else None,
        args=list(spec.args) if spec.args else None,
        ports=[k8s.core.v1.ContainerPortArgs(name=n, container_port=p, protocol="TCP") for n, p in spec.ports.items()]
        or None,
        env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(spec.env.items())] or None,
        resources=spec.resources.to_args(),
        liveness_probe=spec.liveness.to_args() if spec.liveness else None,
        readiness_probe=spec.readiness.to_args() if spec.readiness else None,
        startup_probe=spec.startup.to_args() if spec.startup else None,
        security_context=container_security_context(),
        volume_mounts=mounts,
        termination_message_policy="FallbackToLogsOnError",
    )


def empty_dir(name: str, size: str = TMP_SIZE, *, memory: bool = False) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=name,
        empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=size, medium="Memory" if memory else None),
    )


def secrets_volume(name: str, secrets: Mapping[str, str | Mapping[str, str]]) -> k8s.core.v1.VolumeArgs:
    """Kubernetes Secrets projected into one read-only directory, mode 0400.

    `secrets`: Secret name -> file name (for its single key `value`), or -> {key: file name}. Files, not env
    vars: env leaks into crash dumps, `kubectl describe` and child processes. The app reads one file per setting
    from SETTINGS_SECRETS_DIR (pydantic-settings secrets_dir).
    """
    sources = []
    for secret, files in sorted(secrets.items()):
        items = {"value": files} if isinstance(files, str) else dict(files)
        sources.append(
            k8s.core.v1.VolumeProjectionArgs(
                secret=k8s.core.v1.SecretProjectionArgs(
                    name=secret,
                    items=[k8s.core.v1.KeyToPathArgs(key=k, path=f) for k, f in sorted(items.items())],
                )
            )
        )
    return k8s.core.v1.VolumeArgs(
        name=name, projected=k8s.core.v1.ProjectedVolumeSourceArgs(default_mode=0o400, sources=sources)
    )


def pod_spec(
    *,
    service_account: pulumi.Input[str],
    containers: Sequence[ContainerSpec],
    init_containers: Sequence[ContainerSpec] = (),
    volumes: Sequence[k8s.core.v1.VolumeArgs] = (),
    node_selector: Mapping[str, str] | None = None,
    affinity: k8s.core.v1.AffinityArgs | None = None,
    tolerations: Sequence[k8s.core.v1.TolerationArgs] = (),
    topology_spread: Sequence[k8s.core.v1.TopologySpreadConstraintArgs] = (),
    restart_policy: str | None = None,
    termination_grace_s: int = 30,
    # The /tmp emptyDir's sizeLimit: writing past it gets the pod evicted. The api sizes it from its upload limits.
    tmp_size: str = TMP_SIZE,
) -> k8s.core.v1.PodSpecArgs:
    for c in init_containers:
        if not c.run_to_completion:
            raise ValueError(f"pod_spec.init_containers: {c.name!r} must be built with run_to_completion=True")
    return k8s.core.v1.PodSpecArgs(
        service_account_name=service_account,
        # Nothing here talks to the Kubernetes API. IRSA does not need this token: the EKS pod identity webhook
        # projects its own audience-bound token (sts.amazonaws.com) into the pod.
        automount_service_account_token=False,
        enable_service_links=False,
        host_network=False,
        host_pid=False,
        host_ipc=False,
        security_context=k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True,
            run_as_user=RUN_AS_UID,
            run_as_group=RUN_AS_GID,
            fs_group=RUN_AS_GID,
            fs_group_change_policy="OnRootMismatch",
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        ),
        containers=[container(c) for c in containers],
        init_containers=[container(c) for c in init_containers] or None,
        volumes=[empty_dir("tmp", tmp_size), *volumes],
        node_selector=dict(node_selector) if node_selector else None,
        affinity=affinity,
        tolerations=list(tolerations) or None,
        topology_spread_constraints=list(topology_spread) or None,
        restart_policy=restart_policy,
        termination_grace_period_seconds=termination_grace_s,
    )
