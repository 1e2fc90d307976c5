"""ClamAV's clamd: the malware scanner the api streams every upload to (app/api/malware.py, INSTREAM on 3310).

One Deployment (two replicas or more outside dev, a PDB, zone spread) of the official image
(docker.io/clamav/clamav, pinned by tag@digest in stack config), a ClusterIP Service on 3310 and the clamd and
freshclam configuration in a ConfigMap whose name carries its content hash (a config change rolls the pods).

Why the pod looks like this (sources: the image's Dockerfile and entrypoint in Cisco-Talos/clamav-docker
clamav/1.4/alpine, and docs.clamav.net "ClamAV in Docker"):
- The image's `/init` runs as root (chown, install -d) and keeps `tail -f /dev/null` as its main process, so a
  dead clamd or freshclam never ends the container. We run clamd and freshclam ourselves as the project's
  non-root UID with a read-only root filesystem: clamd is PID 1 of its container (its exit restarts it) and
  freshclam is a sidecar (same image) sharing the signature directory. A sidecar rather than the image's
  built-in freshclam because (a) freshclam's TestDatabases loads a whole second engine to test each download,
  which gets its own memory limit instead of pushing clamd over its own, and (b) each daemon is restarted on
  its own. freshclam still tells clamd to reload (NotifyClamd over the pod's shared localhost); clamd's
  SelfCheck would notice the new files within 10 minutes anyway.
- `clamav/clamav:<version>` (not `_base`) carries a signature set under /var/lib/clamav. An init container
  copies it into the writable emptyDir, so a new pod starts from it and freshclam only fetches the
  differences (database.clamav.net over HTTPS, 443 through the NAT gateway), instead of every pod
  downloading the full set from the CDN at every start.
- Memory: "upwards of 1.2 GiB of RAM simply to load the signature definitions" and "upwards of 2.4 GiB ... when
  loading new signature definitions" (concurrent reload keeps the old engine while the new one loads); the docs
  recommend 3 GiB minimum, 4 GiB preferred (docs.clamav.net/manual/Installing/Docker.html). The tier default
  (stacks/config/tiers.py) requests 3Gi with a 4Gi limit for clamd; freshclam's test load gets its own 2Gi.
- Probes: the image's own health check (`clamdcheck.sh`: PING -> PONG on localhost:3310). Loading the signatures
  takes minutes, so a startup probe allows 10 minutes before liveness starts counting.
- Limits: the api refuses files over MAX_UPLOAD_MB (owned by infra/workloads/uploads.py) itself (413) and
  streams each file to clamd; clamd's StreamMaxLength / MaxFileSize are rendered from the same number, so a file
  the api accepts is never cut short by clamd. AlertExceedsMax: content that exceeds a scan limit is reported
  (FOUND), never passed as clean.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.availability import spread
from infra.workloads.container import ContainerSpec, Probe, Resources, empty_dir, pod_spec
from infra.workloads.deployment import AppDeployment, AppDeploymentArgs
from infra.workloads.labels import labels
from infra.workloads.spec import WorkloadSpec
from infra.workloads.uploads import MAX_UPLOAD_MB

NAME = "clamav"
PORT = 3310
# MAX_UPLOAD_MB (imported above): the api's upload cap per file, owned by infra/workloads/uploads.py and set on the
# api pods by pod_env.api_env, is the floor of clamd's stream limits: one number for both sides.
# At least the library default (400M): a 50 MB PDF can inflate to far more than 50 MB of streams to scan.
MIN_SCAN_MB = 400
CONFIG_DIR = "/etc/clamav-visionrag"
DB_DIR = "/var/lib/clamav-db"
IMAGE_DB_DIR = "/var/lib/clamav"  # where clamav/clamav:<version> carries its preloaded signatures
DB_SIZE = "2Gi"  # main + daily + bytecode (~400 MB) plus freshclam's temporary copies during an update
# clamd writes every INSTREAM to a temp file and extracts a PDF's objects beside it: up to MaxThreads scans of
# (stream + MaxScanSize) at once. Not the pod's small /tmp: an emptyDir over its sizeLimit evicts the pod.
SCRATCH_DIR = "/var/lib/clamd-scratch"
SCRATCH_SIZE = "5Gi"
MAX_THREADS = 10
FRESHCLAM_RESOURCES = Resources(cpu_request="50m", cpu_limit="1", memory_request="256Mi", memory_limit="2Gi")
SEED_RESOURCES = Resources(cpu_request="50m", cpu_limit="500m", memory_request="64Mi", memory_limit="256Mi")
# The image's HEALTHCHECK script (clamav-docker scripts/clamdcheck.sh): `echo PING | nc localhost 3310` == PONG.
PING = ("clamdcheck.sh",)
DAILY_PRESENT = ("sh", "-c", f"test -e {DB_DIR}/daily.cvd || test -e {DB_DIR}/daily.cld")


def clamd_conf(
    *,
    max_upload_mb: int = MAX_UPLOAD_MB,
    port: int = PORT,
    database_dir: str = DB_DIR,
    temp_dir: str = SCRATCH_DIR,
    tcp_addr: str | None = None,
) -> str:
    """clamd.conf. The tests start a real clamd with this very text (loopback address, temp dirs)."""
    if max_upload_mb < 1:
        raise ValueError(f"clamd_conf.max_upload_mb: must be >= 1 (got {max_upload_mb})")
    lines = [
        "# Rendered by infra/workloads/clamav.py: TCP only (no local socket), no privilege drop (already non-root).",
        "Foreground yes",
        f"TCPSocket {port}",
        *([f"TCPAddr {tcp_addr}"] if tcp_addr else []),
        f"DatabaseDirectory {database_dir}",
        f"TemporaryDirectory {temp_dir}",
        "LogTime yes",
        "LogClean no",
        "ExtendedDetectionInfo yes",
        # INSTREAM is refused past this many bytes ("INSTREAM size limit exceeded"): never below the api's cap.
        f"StreamMaxLength {max_upload_mb}M",
        f"MaxFileSize {max_upload_mb}M",
        f"MaxScanSize {max(MIN_SCAN_MB, 4 * max_upload_mb)}M",
        "AlertExceedsMax yes",
        # Scans continue on the old engine while a new one loads (the memory sizing above allows for two).
        "ConcurrentDatabaseReload yes",
        "SelfCheck 600",
        f"MaxThreads {MAX_THREADS}",
        "MaxQueue 100",
        "ReadTimeout 120",
        "CommandReadTimeout 30",
        "IdleTimeout 30",
        # Out of memory: exit and be restarted by the kubelet rather than answer errors.
        "ExitOnOOM yes",
    ]
    return "\n".join(lines) + "\n"


def freshclam_conf(*, database_dir: str = DB_DIR, clamd_conf_path: str = f"{CONFIG_DIR}/clamd.conf") -> str:
    return (
        "# Rendered by infra/workloads/clamav.py: official mirror over HTTPS, 12 checks a day.\n"
        f"DatabaseDirectory {database_dir}\n"
        "DatabaseMirror database.clamav.net\n"
        "Foreground yes\n"
        "LogTime yes\n"
        "Checks 12\n"
        "TestDatabases yes\n"
        f"NotifyClamd {clamd_conf_path}\n"
    )


def service_host(namespace: str) -> str:
    return f"{NAME}.{namespace}.svc.cluster.local"


@dataclass(frozen=True, kw_only=True)
class ClamAVArgs:
    provider: k8s.Provider
    namespace: str
    spec: WorkloadSpec
    service_account: pulumi.Input[str]
    max_upload_mb: int = MAX_UPLOAD_MB
    depends_on: tuple[pulumi.Resource, ...] = ()


class ClamAV(pulumi.ComponentResource):
    config: k8s.core.v1.ConfigMap
    app: AppDeployment
    host: str
    port: int

    def __init__(self, name: str, args: ClamAVArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.spec.replicas < 1:
            raise ValueError(f"ClamAVArgs.spec.replicas: must be >= 1 (got {args.spec.replicas})")
        if args.spec.max_replicas is not None:
            raise ValueError("ClamAVArgs.spec.max_replicas: clamd is not autoscaled (each pod loads ~1.5 GiB)")
        super().__init__("visionrag:workloads:ClamAV", name, None, opts)
        self.host, self.port = service_host(args.namespace), PORT
        files = {"clamd.conf": clamd_conf(max_upload_mb=args.max_upload_mb), "freshclam.conf": freshclam_conf()}
        digest = hashlib.sha256("".join(f"{k}\n{v}" for k, v in sorted(files.items())).encode()).hexdigest()[:10]
        self.config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{NAME}-config-{digest}", namespace=args.namespace, labels=labels(NAME)
            ),
            immutable=True,
            data=files,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        seed = ContainerSpec(
            name="seed-signatures",
            image=args.spec.image,
            resources=SEED_RESOURCES,
            command=["sh", "-c", f"cp -R {IMAGE_DB_DIR}/. {DB_DIR}/ && ls -l {DB_DIR}"],
            mounts={"signatures": DB_DIR},
            run_to_completion=True,
        )
        clamd = ContainerSpec(
            name="clamd",
            image=args.spec.image,
            resources=args.spec.resources,
            command=["clamd", "--foreground", f"--config-file={CONFIG_DIR}/clamd.conf"],
            ports={"clamd": PORT},
            startup=Probe(port=PORT, command=PING, period_s=10, timeout_s=5, failure_threshold=60),
            readiness=Probe(port=PORT, command=PING, period_s=10, timeout_s=5, failure_threshold=3),
            liveness=Probe(port=PORT, command=PING, period_s=30, timeout_s=10, failure_threshold=4),
            mounts={"signatures": DB_DIR, "scratch": SCRATCH_DIR},
            read_only_mounts={"config": CONFIG_DIR},
        )
        freshclam = ContainerSpec(
            name="freshclam",
            image=args.spec.image,
            resources=FRESHCLAM_RESOURCES,
            command=["freshclam", "--daemon", "--foreground", "--stdout", f"--config-file={CONFIG_DIR}/freshclam.conf"],
            # No port: live while the signature set it maintains exists (a crash restarts it by itself).
            readiness=Probe(port=PORT, command=DAILY_PRESENT, period_s=30, timeout_s=5),
            liveness=Probe(port=PORT, command=DAILY_PRESENT, period_s=60, timeout_s=5, failure_threshold=5),
            mounts={"signatures": DB_DIR},
            read_only_mounts={"config": CONFIG_DIR},
        )
        config_volume = k8s.core.v1.VolumeArgs(
            name="config",
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=self.config.metadata.name, default_mode=0o444),
        )
        self.app = AppDeployment(
            f"{name}-clamd",
            AppDeploymentArgs(
                provider=args.provider,
                namespace=args.namespace,
                workload=NAME,
                role=NAME,
                replicas=args.spec.replicas,
                service_ports={"clamd": PORT},
                pod=pod_spec(
                    service_account=args.service_account,
                    containers=[clamd, freshclam],
                    init_containers=[seed],
                    volumes=[empty_dir("signatures", DB_SIZE), empty_dir("scratch", SCRATCH_SIZE), config_volume],
                    topology_spread=spread(NAME),
                    termination_grace_s=30,
                ),
                depends_on=(*args.depends_on, self.config),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"host": self.host, "port": self.port})
