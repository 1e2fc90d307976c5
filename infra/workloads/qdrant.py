"""Qdrant as a StatefulSet: one encrypted gp3 volume per replica for storage and a separate one for snapshots.

The API key comes from the `qdrant-api-key` Secret mounted as a file and is exported as
QDRANT__SERVICE__API_KEY by the start script: the process sees it in its environment, the pod spec never
carries it (no `kubectl describe` or env leak). With more than one replica Qdrant runs in cluster mode: pod 0
starts the consensus, the others bootstrap from it over the p2p port through the headless Service.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.availability import disruption_budget, required_host_anti_affinity, spread
from infra.workloads.await_policy import QDRANT as QDRANT_AWAIT
from infra.workloads.container import SECRETS_DIR, ContainerSpec, Probe, Resources, empty_dir, pod_spec, secrets_volume
from infra.workloads.labels import labels, selector

HTTP, GRPC, P2P = 6333, 6334, 6335
NAME = "qdrant"
HEADLESS = "qdrant-headless"
API_KEY_SECRET = "qdrant-api-key"  # noqa: S105 - the Secret object's name


def start_script(namespace: str) -> str:
    peer = f"{HEADLESS}.{namespace}.svc.cluster.local"
    return f"""set -euo pipefail
export QDRANT__SERVICE__API_KEY="$(cat {SECRETS_DIR}/qdrant_api_key)"
if [ "${{QDRANT__CLUSTER__ENABLED}}" != "true" ]; then exec ./entrypoint.sh; fi
self="http://${{HOSTNAME}}.{peer}:{P2P}"
if [ "${{HOSTNAME##*-}}" = "0" ]; then exec ./entrypoint.sh --uri "$self"; fi
exec ./entrypoint.sh --bootstrap "http://{NAME}-0.{peer}:{P2P}" --uri "$self"
"""


def node_urls(namespace: str, replicas: int) -> list[str]:
    return [f"http://{NAME}-{i}.{HEADLESS}.{namespace}.svc.cluster.local:{HTTP}" for i in range(replicas)]


@dataclass(frozen=True, kw_only=True)
class QdrantArgs:
    provider: k8s.Provider
    namespace: str
    image: str
    replicas: int
    resources: Resources
    storage_class_name: pulumi.Input[str]
    storage_gib: int
    service_account: pulumi.Input[str]
    depends_on: tuple[pulumi.Resource, ...] = ()


class Qdrant(pulumi.ComponentResource):
    statefulset: k8s.apps.v1.StatefulSet
    service: k8s.core.v1.Service
    headless: k8s.core.v1.Service
    url: str

    def __init__(self, name: str, args: QdrantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.replicas < 1:
            raise ValueError(f"QdrantArgs.replicas: must be >= 1 (got {args.replicas})")
        if args.storage_gib < 1:
            raise ValueError(f"QdrantArgs.storage_gib: must be >= 1 (got {args.storage_gib})")
        super().__init__("visionrag:workloads:Qdrant", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        clustered = args.replicas > 1
        self.url = f"http://{NAME}.{args.namespace}.svc.cluster.local:{HTTP}"

        def service(resource: str, svc: str, headless: bool) -> k8s.core.v1.Service:
            ports = {"http": HTTP, "grpc": GRPC} | ({"p2p": P2P} if headless else {})
            return k8s.core.v1.Service(
                resource,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=svc, namespace=args.namespace, labels=labels(NAME)),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    cluster_ip="None" if headless else None,
                    # Peers must resolve each other before they are ready, or the cluster never forms.
                    publish_not_ready_addresses=True if headless else None,
                    selector=selector(NAME),
                    ports=[
                        k8s.core.v1.ServicePortArgs(name=n, port=p, target_port=p, protocol="TCP")
                        for n, p in ports.items()
                    ],
                ),
                opts=child,
            )

        self.headless = service(f"{name}-headless", HEADLESS, True)
        self.service = service(f"{name}-service", NAME, False)

        env = {
            "QDRANT__SERVICE__HTTP_PORT": str(HTTP),
            "QDRANT__SERVICE__GRPC_PORT": str(GRPC),
            "QDRANT__CLUSTER__ENABLED": "true" if clustered else "false",
            "QDRANT__CLUSTER__P2P__PORT": str(P2P),
            "QDRANT__STORAGE__STORAGE_PATH": "/qdrant/storage",
            "QDRANT__STORAGE__SNAPSHOTS_PATH": "/qdrant/snapshots",
            "QDRANT__STORAGE__TEMP_PATH": "/qdrant/snapshots/tmp",
            "QDRANT_INIT_FILE_PATH": "/qdrant/init/.qdrant-initialized",
            "QDRANT__TELEMETRY_DISABLED": "true",
            "QDRANT__LOG_LEVEL": "INFO",
        }
        spec = ContainerSpec(
            name=NAME,
            image=args.image,
            resources=args.resources,
            command=["/bin/bash", "-c"],
            args=[start_script(args.namespace)],
            ports={"http": HTTP, "grpc": GRPC, "p2p": P2P},
            env=env,
            # Health endpoints need no API key. Startup allows 10 minutes of WAL replay on a large collection.
            startup=Probe(port=HTTP, path="/livez", period_s=10, failure_threshold=60),
            liveness=Probe(port=HTTP, path="/livez", period_s=10, failure_threshold=6),
            readiness=Probe(port=HTTP, path="/readyz", period_s=5, failure_threshold=3),
            mounts={"storage": "/qdrant/storage", "snapshots": "/qdrant/snapshots", "init": "/qdrant/init"},
            read_only_mounts={"secrets": SECRETS_DIR},
        )
        pod = pod_spec(
            service_account=args.service_account,
            containers=[spec],
            volumes=[empty_dir("init", "16Mi"), secrets_volume("secrets", {API_KEY_SECRET: "qdrant_api_key"})],
            affinity=k8s.core.v1.AffinityArgs(pod_anti_affinity=required_host_anti_affinity(NAME))
            if clustered
            else None,
            topology_spread=spread(NAME),
            termination_grace_s=60,  # flush the WAL
        )

        def claim(volume: str, gib: int) -> k8s.core.v1.PersistentVolumeClaimArgs:
            return k8s.core.v1.PersistentVolumeClaimArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(name=volume, labels=labels(NAME)),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=args.storage_class_name,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": f"{gib}Gi"}),
                ),
            )

        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAME, namespace=args.namespace, labels=labels(NAME), annotations=QDRANT_AWAIT.annotations()
            ),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                replicas=args.replicas,
                service_name=HEADLESS,
                pod_management_policy="Parallel",
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(NAME)),
                update_strategy=k8s.apps.v1.StatefulSetUpdateStrategyArgs(type="RollingUpdate"),
                # Volumes outlive the StatefulSet: deleting it must never delete the index.
                persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
                    when_deleted="Retain", when_scaled="Retain"
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(NAME)), spec=pod
                ),
                volume_claim_templates=[
                    claim("storage", args.storage_gib),
                    claim("snapshots", max(10, args.storage_gib // 2)),
                ],
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.headless])),
        )
        if clustered:
            disruption_budget(f"{name}-pdb", workload=NAME, namespace=args.namespace, opts=child)
        self.register_outputs({"url": self.url})
