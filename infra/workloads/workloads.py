"""Workloads: everything that runs in the cluster, composed from the parts in this package.

A thin orchestrator: `Workloads.__init__` builds each child in order, one method per step, and every child is
built by its own module. Order: namespaces (+ default-deny, then the allows) -> add-ons (CRDs and controllers)
-> identities -> secrets -> Qdrant -> app Deployments -> snapshot CronJob -> TargetGroupBindings. CRD-backed
objects depend on the release that installs their CRD. The pods' environment (the app's settings contract) is
built by the pure functions of infra/workloads/pod_env.py.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.addons import Addons, AddonsArgs
from infra.workloads.api import HTTP_PORT as API_PORT
from infra.workloads.api import api_args
from infra.workloads.app_secrets import app_secrets
from infra.workloads.args import WorkloadsArgs, validate
from infra.workloads.deployment import AppDeployment
from infra.workloads.embedder import embedder_args
from infra.workloads.external_secrets import ExternalSecrets, ExternalSecretsArgs
from infra.workloads.frontend import HTTP_PORT as FRONTEND_PORT
from infra.workloads.frontend import frontend_args
from infra.workloads.iam_scopes import workload_scopes
from infra.workloads.identity import WorkloadIdentity, WorkloadIdentityArgs
from infra.workloads.ingress_binding import TargetGroupBinding, TargetGroupBindingArgs
from infra.workloads.namespaces import Namespaces, NamespacesArgs
from infra.workloads.network_policies import NetworkPolicies, NetworkPoliciesArgs
from infra.workloads.pod_env import api_env, app_env, embedder_env, snapshot_env, worker_env
from infra.workloads.qdrant import Qdrant, QdrantArgs
from infra.workloads.snapshots import SnapshotJob, SnapshotJobArgs
from infra.workloads.spec import WorkloadSpec
from infra.workloads.worker import worker_args


def _in_cluster_collector(endpoint: str | None) -> tuple[str, int] | None:
    """(namespace, port) of an in-cluster OTLP collector; None for none or a managed one (443 egress covers it)."""
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").split(".")
    if len(host) < 3 or host[2] != "svc":
        return None
    return host[1], parts.port or (443 if parts.scheme == "https" else 80)


class Workloads(pulumi.ComponentResource):
    """Composes the parts in order; each step is one method below, each child is built by its own module."""

    namespaces: Namespaces
    addons: Addons
    identities: dict[str, WorkloadIdentity]
    secrets: ExternalSecrets
    deployments: dict[str, AppDeployment]
    qdrant: Qdrant
    snapshots: SnapshotJob
    bindings: dict[str, TargetGroupBinding]
    namespace: str

    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        validate(args)
        super().__init__("visionrag:workloads:Workloads", name, None, opts)
        self.namespace = args.namespace
        self.namespaces = self._namespaces(name, args)
        self.addons = self._addons(name, args)
        self.identities = self._identities(name, args)
        self.secrets = self._secrets(name, args)
        self.qdrant = self._qdrant(name, args)
        self.deployments = self._deployments(name, args)
        self.snapshots = self._snapshots(name, args)
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

    def _namespaces(self, name: str, a: WorkloadsArgs) -> Namespaces:
        """The namespaces with their default-deny, then the explicit allows on top."""
        namespaces = Namespaces(
            f"{name}-namespaces",
            NamespacesArgs(provider=a.provider, app=a.namespace, system=a.system_namespace),
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
                otlp_collector=_in_cluster_collector(a.otlp_endpoint),
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
            ).items()
        }
        # Qdrant and the frontend call no AWS API: a ServiceAccount of their own, no IAM role at all.
        plain_sas = {"qdrant"} | ({"frontend"} if a.frontend else set())
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
                depends_on=(self.namespaces, self.secrets),
            ),
            opts=self._child(),
        )

    def _sa(self, workload: str) -> pulumi.Output[str]:
        return self.identities[workload].service_account.metadata.name

    def _deployments(self, name: str, a: WorkloadsArgs) -> dict[str, AppDeployment]:
        """The stateless workloads: api (+ canary), worker, embedder, frontend; env from pod_env."""
        ns = a.namespace
        shared = app_env(
            tier=a.tier,
            log_level=a.log_level,
            region=a.region,
            namespace=ns,
            pages_bucket=a.bucket_names["pages"],
            s3_key_arn=a.s3_key_arn,
            qdrant_url=self.qdrant.url,
        )
        api = api_env(
            shared,
            audit_bucket=a.bucket_names["audit"],
            allowed_origins=a.allowed_origins,
            alb_cidrs=a.alb_cidrs,
            rate_limits=a.api_rate_limits,
            otlp_endpoint=a.otlp_endpoint,
        )
        # Both the api and the worker report errors to Sentry (setup_sentry) when the sentry_dsn file exists.
        sentry_files = {"sentry-dsn": "sentry_dsn"} if "sentry-dsn" in a.secret_names else {}
        # Only the api calls the LLM: with no key there is no file, the api builds no chat model, /chat is 503.
        llm_files = {"llm-api-key": "openai_api_key"} if "llm-api-key" in a.secret_names else {}
        deps = (self.namespaces, self.secrets)
        api_sa = self._sa("api")
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
                env=worker_env(shared, qdrant_replication_factor=a.qdrant_replication_factor),
                service_account=self._sa("worker"),
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
                service_account=self._sa("embedder"),
                env=embedder_env(tier=a.tier, log_level=a.log_level),
                depends_on=(self.namespaces, self.addons.releases["nvidia-device-plugin"]),
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
        return {w: AppDeployment(f"{name}-{w}", b, opts=self._child()) for w, b in builds.items()}

    def _snapshots(self, name: str, a: WorkloadsArgs) -> SnapshotJob:
        return SnapshotJob(
            f"{name}-snapshots",
            SnapshotJobArgs(
                provider=a.provider,
                namespace=a.namespace,
                image=a.snapshots.image,
                command=a.snapshot_command,
                schedule=a.snapshot_schedule,
                resources=a.snapshots.resources,
                service_account=self._sa("snapshots"),
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
                ),
                secrets={"qdrant-api-key": "qdrant_api_key"},
                depends_on=(self.namespaces, self.secrets),
            ),
            opts=self._child(),
        )

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
