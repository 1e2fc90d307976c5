"""Workloads: everything that runs in the cluster, composed from the parts in this package.

A thin orchestrator: `Workloads.__init__` builds each child in order, one method per step, and every child is
built by its own module. Order: namespaces (+ default-deny, then the allows) -> add-ons (CRDs and controllers)
-> signed-image admission (staging, prod) -> the OTLP collector -> identities -> secrets -> Qdrant -> the malware
scanner (staging, prod) -> app Deployments (infra/workloads/app_deployments.py) -> snapshot CronJob -> restore
drill (prod) -> TargetGroupBindings. CRD-backed objects depend on the release that installs their CRD, and the
app namespace's pods on the admission policies. The pods' environment (the app's settings contract) is built by
the pure functions of infra/workloads/pod_env.py.
"""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.addons import Addons, AddonsArgs
from infra.workloads.api import HTTP_PORT as API_PORT
from infra.workloads.app_deployments import app_deployment_args, in_cluster_collector, tracing_endpoint
from infra.workloads.app_secrets import app_secrets
from infra.workloads.args import WorkloadsArgs, validate
from infra.workloads.clamav import ClamAV, ClamAVArgs
from infra.workloads.deployment import AppDeployment
from infra.workloads.external_secrets import ExternalSecrets, ExternalSecretsArgs
from infra.workloads.frontend import HTTP_PORT as FRONTEND_PORT
from infra.workloads.iam_scopes import workload_scopes
from infra.workloads.identity import WorkloadIdentity, WorkloadIdentityArgs
from infra.workloads.image_admission import (
    INCLUDE_LABEL,
    ImageAdmission,
    ImageAdmissionArgs,
    app_images,
    third_party_images,
)
from infra.workloads.ingress_binding import TargetGroupBinding, TargetGroupBindingArgs
from infra.workloads.namespaces import Namespaces, NamespacesArgs
from infra.workloads.network_policies import NetworkPolicies, NetworkPoliciesArgs
from infra.workloads.otel_collector import OtelCollector, OtelCollectorArgs
from infra.workloads.pod_env import snapshot_env
from infra.workloads.qdrant import Qdrant, QdrantArgs
from infra.workloads.restore_drill import NAME as RESTORE_DRILL
from infra.workloads.restore_drill import RestoreDrillJob
from infra.workloads.snapshots import SnapshotJob, SnapshotJobArgs


class Workloads(pulumi.ComponentResource):
    """Composes the parts in order; each step is one method below, each child is built by its own module."""

    namespaces: Namespaces
    addons: Addons
    identities: dict[str, WorkloadIdentity]
    secrets: ExternalSecrets
    deployments: dict[str, AppDeployment]
    qdrant: Qdrant
    clamav: ClamAV | None
    admission: ImageAdmission | None
    collector: OtelCollector | None
    snapshots: SnapshotJob
    restore_drill: RestoreDrillJob | None
    bindings: dict[str, TargetGroupBinding]
    namespace: str

    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate(args)
        super().__init__("visionrag:workloads:Workloads", name, None, opts)
        self.namespace = args.namespace
        self.namespaces = self._namespaces(name, args)
        self.addons = self._addons(name, args)
        self.admission = self._admission(name, args)
        self.collector = self._collector(name, args)
        self.identities = self._identities(name, args)
        self.secrets = self._secrets(name, args)
        self.qdrant = self._qdrant(name, args)
        self.clamav = self._clamav(name, args)
        self.deployments = self._deployments(name, args)
        self.snapshots = self._snapshots(name, args)
        self.restore_drill = self._restore_drill(name, args)
        self.bindings = self._bindings(name, args)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "role_arns": {sa: i.role_arn for sa, i in self.identities.items()},
                "qdrant_url": self.qdrant.url,
            }
        )

    def _child(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on) or None)

    def _admitted(self) -> tuple[pulumi.Resource, ...]:
        """What the app namespace's pods wait for: with signed-image admission, its controller and policies (a
        pod created between the webhook going live and its policies existing would be refused, no-match: deny)."""
        return (self.admission,) if self.admission is not None else ()

    def _namespaces(self, name: str, a: WorkloadsArgs) -> Namespaces:
        """The namespaces with their default-deny, then the explicit allows on top."""
        namespaces = Namespaces(
            f"{name}-namespaces",
            NamespacesArgs(
                provider=a.provider,
                app=a.namespace,
                system=a.system_namespace,
                app_labels=INCLUDE_LABEL if a.image_admission else {},
            ),
            opts=self._child(),
        )
        NetworkPolicies(
            f"{name}-netpol",
            NetworkPoliciesArgs(
                provider=a.provider,
                app_namespace=a.namespace,
                system_namespace=a.system_namespace,
                alb_cidrs=a.alb_cidrs,
                control_plane_cidrs=a.control_plane_cidrs,
                scraper_cidrs=a.scraper_cidrs,
                pod_cidrs=a.pod_cidrs,
                cache_cidrs=a.cache_cidrs,
                frontend=a.frontend is not None,
                otlp_collector=in_cluster_collector(tracing_endpoint(a)),
                clamav=a.clamav is not None,
                restore_drill=a.restore_drill is not None,
            ),
            opts=self._child(namespaces),
        )
        return namespaces

    def _addons(self, name: str, a: WorkloadsArgs) -> Addons:
        return Addons(
            f"{name}-addons",
            AddonsArgs(
                provider=a.provider,
                namespace=a.system_namespace,
                app_namespace=a.namespace,
                cluster_name=a.cluster_name,
                kubernetes_version=a.kubernetes_version,
                region=a.region,
                vpc_id=a.vpc_id,
                target_group_arns=list(a.target_group_arns.values()),
                oidc_provider_arn=a.oidc_provider_arn,
                oidc_issuer=a.oidc_issuer,
                gpu_taint=a.gpu_taint,
                gpu_label=a.gpu_label,
                role_name_prefix=a.role_name_prefix,
                install_metrics_server=a.install_metrics_server,
                tags=a.tags,
                depends_on=(self.namespaces,),
            ),
            opts=self._child(),
        )

    def _admission(self, name: str, a: WorkloadsArgs) -> ImageAdmission | None:
        """Signed-image admission for the app namespace (staging, prod): the controller, then its policies."""
        if a.image_admission is None:
            return None
        return ImageAdmission(
            f"{name}-admission",
            ImageAdmissionArgs(
                provider=a.provider,
                namespace=a.system_namespace,
                settings=a.image_admission,
                third_party_images=third_party_images(app_images(a), a.image_admission.repository_urls),
                policy_prefix=a.namespace,
                oidc_provider_arn=a.oidc_provider_arn,
                oidc_issuer=a.oidc_issuer,
                role_name_prefix=a.role_name_prefix,
                tags=a.tags,
                depends_on=(self.namespaces,),
            ),
            opts=self._child(),
        )

    def _identities(self, name: str, a: WorkloadsArgs) -> dict[str, WorkloadIdentity]:
        """One ServiceAccount per workload: an IRSA role for those that call AWS, a plain one for the others."""
        identities = {
            sa: WorkloadIdentity(
                f"{name}-{sa}-identity",
                WorkloadIdentityArgs(
                    provider=a.provider,
                    namespace=a.namespace,
                    service_account=sa,
                    role_name=f"{a.role_name_prefix}-{sa}"[:64],
                    oidc_provider_arn=a.oidc_provider_arn,
                    oidc_issuer=a.oidc_issuer,
                    statements=statements,
                    tags=a.tags,
                    depends_on=(self.namespaces,),
                ),
                opts=self._child(),
            )
            for sa, statements in workload_scopes(
                region=a.region,
                bucket_arns=a.bucket_arns,
                s3_key_arn=a.s3_key_arn,
                secrets_key_arn=a.secrets_key_arn,
                secret_arns=a.secret_arns,
                restore_drill=a.restore_drill is not None,
            ).items()
        }
        # Qdrant, the frontend and clamav call no AWS API: a ServiceAccount of their own, no IAM role at all.
        plain_sas = {"qdrant"} | ({"frontend"} if a.frontend else set()) | ({"clamav"} if a.clamav else set())
        for sa in sorted(plain_sas):
            k8s.core.v1.ServiceAccount(
                f"{name}-{sa}-sa",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=sa, namespace=a.namespace),
                automount_service_account_token=False,
                opts=pulumi.ResourceOptions(parent=self, provider=a.provider, depends_on=[self.namespaces]),
            )
        return identities

    def _secrets(self, name: str, a: WorkloadsArgs) -> ExternalSecrets:
        return ExternalSecrets(
            f"{name}-secrets",
            ExternalSecretsArgs(
                provider=a.provider,
                namespace=a.namespace,
                region=a.region,
                service_account="secrets-reader",
                secrets=app_secrets(
                    a.secret_names,
                    cache_endpoint=a.cache_endpoint,
                    cache_port=a.cache_port,
                    frontend=a.frontend is not None,
                ),
                depends_on=(self.addons.releases["external-secrets"], self.identities["secrets-reader"]),
            ),
            opts=self._child(),
        )

    def _qdrant(self, name: str, a: WorkloadsArgs) -> Qdrant:
        return Qdrant(
            f"{name}-qdrant",
            QdrantArgs(
                provider=a.provider,
                namespace=a.namespace,
                image=a.qdrant.image,
                replicas=a.qdrant.replicas,
                resources=a.qdrant.resources,
                storage_class_name=a.storage_class_name,
                storage_gib=a.qdrant_storage_gib,
                service_account="qdrant",
                depends_on=(self.namespaces, self.secrets, *self._admitted()),
            ),
            opts=self._child(),
        )

    def _clamav(self, name: str, a: WorkloadsArgs) -> ClamAV | None:
        """The malware scanner the api streams uploads to; None where the stack deploys none (dev)."""
        if a.clamav is None:
            return None
        return ClamAV(
            f"{name}-clamav",
            ClamAVArgs(
                provider=a.provider,
                namespace=a.namespace,
                spec=a.clamav,
                service_account="clamav",
                depends_on=(self.namespaces, *self._admitted()),
            ),
            opts=self._child(),
        )

    def _collector(self, name: str, a: WorkloadsArgs) -> OtelCollector | None:
        """The in-cluster OTLP collector -> X-Ray, when tracing is on and no managed collector is configured."""
        if a.trace_sample_ratio is None or a.otlp_endpoint is not None:
            return None
        return OtelCollector(
            f"{name}-otel-collector",
            OtelCollectorArgs(
                provider=a.provider,
                namespace=a.system_namespace,
                app_namespace=a.namespace,
                region=a.region,
                oidc_provider_arn=a.oidc_provider_arn,
                oidc_issuer=a.oidc_issuer,
                role_name_prefix=a.role_name_prefix,
                # As available as the api whose traces it carries: one copy where the api runs one.
                replicas=2 if a.api.replicas > 1 else 1,
                tags=a.tags,
                depends_on=(self.namespaces,),
            ),
            opts=self._child(),
        )

    def _sa(self, workload: str) -> pulumi.Output[str]:
        return self.identities[workload].service_account.metadata.name

    def _deployments(self, name: str, a: WorkloadsArgs) -> dict[str, AppDeployment]:
        """The stateless workloads: api (+ canary), worker, embedder, frontend (infra/workloads/app_deployments.py)."""
        builds = app_deployment_args(
            a,
            qdrant_url=self.qdrant.url,
            scanner=(self.clamav.host, self.clamav.port) if self.clamav else None,
            service_account=self._sa,
            depends_on=(self.namespaces, self.secrets, *self._admitted()),
            gpu_plugin=self.addons.releases["nvidia-device-plugin"],
        )
        # The worker rolls out first and the api (+ canary) waits for it: a job the new api enqueues (new fields
        # such as its trace context) must never reach a worker older than the api.
        deployments = {"worker": AppDeployment(f"{name}-worker", builds.pop("worker"), opts=self._child())}
        for w, b in builds.items():
            if w.startswith("api"):
                b = dataclasses.replace(b, depends_on=(*b.depends_on, deployments["worker"]))
            deployments[w] = AppDeployment(f"{name}-{w}", b, opts=self._child())
        return deployments

    def _ops_job_args(self, a: WorkloadsArgs, *, sa: str, command: list[str], schedule: str) -> SnapshotJobArgs:
        """A scheduled ops command's pod: the snapshot job's image, resources, env and Qdrant key, its own SA."""
        return SnapshotJobArgs(
            provider=a.provider,
            namespace=a.namespace,
            image=a.snapshots.image,
            command=command,
            schedule=schedule,
            resources=a.snapshots.resources,
            service_account=self._sa(sa),
            env=snapshot_env(
                tier=a.tier,
                log_level=a.log_level,
                region=a.region,
                namespace=a.namespace,
                qdrant_url=self.qdrant.url,
                qdrant_replicas=a.qdrant.replicas,
                snapshots_bucket=a.bucket_names["snapshots"],
                s3_key_arn=a.s3_key_arn,
                keep_last=a.snapshot_retention,
                audit_bucket=a.bucket_names["audit"],
                service_account=sa,
            ),
            secrets={"qdrant-api-key": "qdrant_api_key"},
            depends_on=(self.namespaces, self.secrets, *self._admitted()),
        )

    def _snapshots(self, name: str, a: WorkloadsArgs) -> SnapshotJob:
        args = self._ops_job_args(a, sa="snapshots", command=list(a.snapshot_command), schedule=a.snapshot_schedule)
        return SnapshotJob(f"{name}-snapshots", args, opts=self._child())

    def _restore_drill(self, name: str, a: WorkloadsArgs) -> RestoreDrillJob | None:
        """The monthly restore drill (a.restore_drill None: none): same pod shape, its own read-only identity."""
        if a.restore_drill is None:
            return None
        args = self._ops_job_args(
            a, sa=RESTORE_DRILL, command=a.restore_drill.command(), schedule=a.restore_drill.schedule
        )
        return RestoreDrillJob(f"{name}-{RESTORE_DRILL}", args, opts=self._child())

    def _bindings(self, name: str, a: WorkloadsArgs) -> dict[str, TargetGroupBinding]:
        """Edge wiring: the ALB's target groups point at the Services (after the controller and the pods)."""
        ports = {"api": API_PORT, "api-canary": API_PORT, "frontend": FRONTEND_PORT}
        return {
            w: TargetGroupBinding(
                f"{name}-{w}-binding",
                TargetGroupBindingArgs(
                    provider=a.provider,
                    namespace=a.namespace,
                    service=w,
                    port=ports[w],
                    target_group_arn=a.target_group_arns[w],
                    depends_on=(self.addons.releases["aws-load-balancer-controller"], self.deployments[w]),
                ),
                opts=self._child(),
            )
            for w in ports
            if w in self.deployments
        }
