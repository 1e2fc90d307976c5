"""Workloads: everything that runs in the cluster, composed from the parts in this package.

Order: namespaces (+ default-deny) -> add-ons (CRDs and controllers) -> identities -> secrets -> workloads ->
TargetGroupBindings. CRD-backed objects depend on the release that installs their CRD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.addons import Addons, AddonsArgs
from infra.workloads.api import api_args
from infra.workloads.deployment import AppDeployment
from infra.workloads.embedder import embedder_args
from infra.workloads.external_secrets import ExternalSecrets, ExternalSecretsArgs, SecretSource
from infra.workloads.frontend import frontend_args
from infra.workloads.identity import S3_READ, S3_READ_WRITE, WorkloadIdentity, WorkloadIdentityArgs, kms_via, s3_objects
from infra.workloads.ingress_binding import TargetGroupBinding, TargetGroupBindingArgs
from infra.workloads.namespaces import Namespaces, NamespacesArgs
from infra.workloads.network_policies import NetworkPolicies, NetworkPoliciesArgs
from infra.workloads.qdrant import Qdrant, QdrantArgs, node_urls
from infra.workloads.snapshots import SnapshotJob, SnapshotJobArgs
from infra.workloads.spec import WorkloadSpec
from infra.workloads.worker import worker_args

BUCKETS = ("pages", "snapshots", "models", "audit")
SECRETS = ("qdrant-api-key", "llm-api-key", "cache-auth", "jwt")
QDRANT_COLLECTION = "pages"


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
    node_security_group_id: pulumi.Input[str]
    gpu_taint: tuple[str, str, str]
    gpu_label: tuple[str, str]
    gpu_nodes_max: int
    install_metrics_server: bool = True
    # network / edge / cache
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    alb_security_group_id: pulumi.Input[str]
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
    # OTLP/HTTP collector for the api's traces (validated in stacks/config/observability.py); None: no tracing.
    otlp_endpoint: str | None = None
    namespace: str = "visionrag"
    system_namespace: str = "visionrag-system"


def _validate(a: WorkloadsArgs) -> None:
    missing = [b for b in BUCKETS if b not in a.bucket_names or b not in a.bucket_arns]
    if missing:
        raise ValueError(f"WorkloadsArgs.bucket_names/bucket_arns: missing {missing}; need {', '.join(BUCKETS)}")
    missing = [s for s in SECRETS if s not in a.secret_names]
    if missing:
        raise ValueError(f"WorkloadsArgs.secret_names: missing {missing}; need {', '.join(SECRETS)}")
    needed = ["api"] + (["frontend"] if a.frontend else []) + (["api-canary"] if a.canary_image else [])
    missing = [t for t in needed if t not in a.target_group_arns]
    if missing:
        raise ValueError(f"WorkloadsArgs.target_group_arns: missing {missing} (keys: {', '.join(a.target_group_arns)})")
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
    namespaces: Namespaces
    addons: Addons
    identities: dict[str, WorkloadIdentity]
    deployments: dict[str, AppDeployment]
    qdrant: Qdrant
    snapshots: SnapshotJob
    bindings: dict[str, TargetGroupBinding]
    namespace: str

    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:workloads:Workloads", name, None, opts)
        a = args
        ns = a.namespace
        self.namespace = ns
        self.namespaces = Namespaces(
            f"{name}-namespaces",
            NamespacesArgs(provider=a.provider, app=ns, system=a.system_namespace),
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_ns = (self.namespaces,)
        NetworkPolicies(
            f"{name}-netpol",
            NetworkPoliciesArgs(
                provider=a.provider,
                app_namespace=ns,
                system_namespace=a.system_namespace,
                ingress_cidrs=[a.vpc_cidr],
                cache_cidrs=[a.vpc_cidr],
                frontend=a.frontend is not None,
                otlp_collector=_in_cluster_collector(a.otlp_endpoint),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespaces]),
        )
        self.addons = Addons(
            f"{name}-addons",
            AddonsArgs(
                provider=a.provider,
                namespace=a.system_namespace,
                app_namespace=ns,
                cluster_name=a.cluster_name,
                kubernetes_version=a.kubernetes_version,
                region=a.region,
                vpc_id=a.vpc_id,
                node_security_group_id=a.node_security_group_id,
                target_group_arns=list(a.target_group_arns.values()),
                oidc_provider_arn=a.oidc_provider_arn,
                oidc_issuer=a.oidc_issuer,
                gpu_taint=a.gpu_taint,
                gpu_label=a.gpu_label,
                role_name_prefix=a.role_name_prefix,
                install_metrics_server=a.install_metrics_server,
                tags=a.tags,
                depends_on=in_ns,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        # ---- identities: one ServiceAccount per workload, each with only what it touches ----------------
        pages, snaps, models = (a.bucket_arns[b] for b in ("pages", "snapshots", "models"))
        kms_rw = kms_via("S3KeyUse", a.s3_key_arn, "s3", a.region, encrypt=True)
        scopes = {
            "api": [
                *s3_objects("Pages", pages, S3_READ_WRITE),
                # Audit records are append-only from the api: write, never read or delete (Object Lock).
                {
                    "Sid": "AuditAppend",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject"],
                    "Resource": [pulumi.Output.concat(a.bucket_arns["audit"], "/*")],
                },
                kms_rw,
            ],
            "worker": [*s3_objects("Pages", pages, S3_READ_WRITE), kms_rw],
            "snapshots": [*s3_objects("Snapshots", snaps, S3_READ_WRITE), kms_rw],
            "embedder": [
                *s3_objects("Models", models, S3_READ),
                kms_via("S3KeyDecrypt", a.s3_key_arn, "s3", a.region, encrypt=False),
            ],
            "secrets-reader": [
                {
                    "Sid": "ReadProjectSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": list(a.secret_arns),
                },
                kms_via("SecretsKeyDecrypt", a.secrets_key_arn, "secretsmanager", a.region, encrypt=False),
            ],
        }
        self.identities = {
            sa: WorkloadIdentity(
                f"{name}-{sa}-identity",
                WorkloadIdentityArgs(
                    provider=a.provider,
                    namespace=ns,
                    service_account=sa,
                    role_name=f"{a.role_name_prefix}-{sa}"[:64],
                    oidc_provider_arn=a.oidc_provider_arn,
                    oidc_issuer=a.oidc_issuer,
                    statements=statements,
                    tags=a.tags,
                    depends_on=in_ns,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for sa, statements in scopes.items()
        }
        # Qdrant and the frontend call no AWS API: a ServiceAccount of their own, no IAM role at all.
        plain_sas = {"qdrant"} | ({"frontend"} if a.frontend else set())
        for sa in sorted(plain_sas):
            k8s.core.v1.ServiceAccount(
                f"{name}-{sa}-sa",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=sa, namespace=ns),
                automount_service_account_token=False,
                opts=pulumi.ResourceOptions(parent=self, provider=a.provider, depends_on=[self.namespaces]),
            )

        # ---- secrets -----------------------------------------------------------------------------------
        redis_url = pulumi.Output.concat(
            "rediss://:{{ .secret | urlquery }}@",
            a.cache_endpoint,
            ":",
            pulumi.Output.from_input(a.cache_port).apply(str),
            "/0",
        )
        # The jwt secret is JSON {issuer_url, audience, jwks_url, algorithms}: one file per api setting.
        auth_template = {
            "auth_issuer_url": "{{ .issuer_url }}",
            "auth_audience": "{{ .audience }}",
            "auth_jwks_url": "{{ .jwks_url }}",
            "auth_algorithms": '{{ .algorithms | fromJson | join "," }}',
        }
        secrets = ExternalSecrets(
            f"{name}-secrets",
            ExternalSecretsArgs(
                provider=a.provider,
                namespace=ns,
                region=a.region,
                service_account="secrets-reader",
                secrets={
                    "qdrant-api-key": SecretSource(remote_name=a.secret_names["qdrant-api-key"]),
                    "llm-api-key": SecretSource(remote_name=a.secret_names["llm-api-key"]),
                    # The app takes one REDIS_URL; the TLS URL is assembled around the ElastiCache auth token.
                    "redis-url": SecretSource(remote_name=a.secret_names["cache-auth"], template={"value": redis_url}),
                    "api-auth": SecretSource(remote_name=a.secret_names["jwt"], template=auth_template, extract=True),
                    # Optional: present only when the stack sets visionrag:sentryDsn.
                    **(
                        {"sentry-dsn": SecretSource(remote_name=a.secret_names["sentry-dsn"])}
                        if "sentry-dsn" in a.secret_names
                        else {}
                    ),
                },
                depends_on=(self.addons.releases["external-secrets"], self.identities["secrets-reader"]),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        # ---- workloads ---------------------------------------------------------------------------------
        self.qdrant = Qdrant(
            f"{name}-qdrant",
            QdrantArgs(
                provider=a.provider,
                namespace=ns,
                image=a.qdrant.image,
                replicas=a.qdrant.replicas,
                resources=a.qdrant.resources,
                storage_class_name=a.storage_class_name,
                storage_gib=a.qdrant_storage_gib,
                service_account="qdrant",
                depends_on=(self.namespaces, secrets),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        svc = f"{ns}.svc.cluster.local"
        # Names are the app's settings fields (app/core/settings.py, app/worker/settings.py); the contract is
        # asserted by tests/infra/workloads/test_app_contract.py against the settings classes themselves.
        env: dict[str, pulumi.Input[str]] = {
            "ENVIRONMENT": a.tier,
            "LOG_LEVEL": a.log_level.upper(),
            "S3_ENDPOINT": f"s3.{a.region}.amazonaws.com",
            "S3_SECURE": "true",
            "S3_REGION": a.region,
            # IRSA: no static keys exist; the app signs with the web-identity credentials EKS injects.
            "S3_AUTH": "iam",
            "S3_BUCKET_PAGES": a.bucket_names["pages"],
            "S3_SSE": "kms",
            "S3_KMS_KEY_ID": a.s3_key_arn,
            "QDRANT_URL": self.qdrant.url,
            "QDRANT_COLLECTION": QDRANT_COLLECTION,
            "EMBEDDER_URL": f"http://embedder.{svc}:7000",
        }
        worker_env = {
            **env,
            # The worker creates the collection: its copies must match the cluster's replication.
            "QDRANT_REPLICATION_FACTOR": str(a.qdrant_replication_factor),
        }
        api_env = {
            **env,
            "LOG_JSON": "true",
            "S3_BUCKET_AUDIT": a.bucket_names["audit"],
            "ALLOWED_ORIGINS": ",".join(a.allowed_origins),
            # The ALB's addresses: the only peers whose X-Forwarded-For is believed.
            "TRUSTED_PROXIES": a.vpc_cidr,
            # /health is the readiness probe: an embedder that is loading (or scaling its GPU node from zero)
            # must degrade search to 503s, not pull every api pod (uploads, documents, jobs) out of the ALB.
            "HEALTH_OPTIONAL_DEPENDENCIES": "embedder",
            # Only the api traces (app/core/telemetry.setup_tracing); the worker has no tracer to point anywhere.
            **({"OTEL_EXPORTER_OTLP_ENDPOINT": a.otlp_endpoint} if a.otlp_endpoint else {}),
        }
        # Both the api and the worker report errors to Sentry (setup_sentry) when the sentry_dsn file exists.
        sentry_files = {"sentry-dsn": "sentry_dsn"} if "sentry-dsn" in a.secret_names else {}
        deps = (self.namespaces, secrets)
        api_sa = self.identities["api"].service_account.metadata.name
        builds = {
            "api": api_args(
                provider=a.provider,
                namespace=ns,
                workload="api",
                spec=a.api,
                command=a.api_command,
                env=api_env,
                service_account=api_sa,
                extra_secrets=sentry_files,
                depends_on=deps,
            ),
            "worker": worker_args(
                provider=a.provider,
                namespace=ns,
                spec=a.worker,
                command=a.worker_command,
                env=worker_env,
                service_account=self.identities["worker"].service_account.metadata.name,
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
                service_account=self.identities["embedder"].service_account.metadata.name,
                # The embedder's settings all carry the EMBEDDER_ prefix; its log level is lower case (uvicorn's).
                env={"EMBEDDER_LOG_LEVEL": a.log_level.lower(), "EMBEDDER_ENVIRONMENT": a.tier},
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
                env=api_env,
                service_account=api_sa,
                extra_secrets=sentry_files,
                autoscale=False,
                depends_on=deps,
            )
        if a.frontend:
            builds["frontend"] = frontend_args(
                provider=a.provider,
                namespace=ns,
                spec=a.frontend,
                service_account="frontend",
                depends_on=(self.namespaces,),
            )
        self.deployments = {
            w: AppDeployment(f"{name}-{w}", b, opts=pulumi.ResourceOptions(parent=self)) for w, b in builds.items()
        }

        self.snapshots = SnapshotJob(
            f"{name}-snapshots",
            SnapshotJobArgs(
                provider=a.provider,
                namespace=ns,
                image=a.snapshots.image,
                command=a.snapshot_command,
                schedule=a.snapshot_schedule,
                resources=a.snapshots.resources,
                service_account=self.identities["snapshots"].service_account.metadata.name,
                env={
                    "ENVIRONMENT": a.tier,
                    "LOG_LEVEL": a.log_level.upper(),
                    "QDRANT_URL": self.qdrant.url,
                    "QDRANT_NODE_URLS": ",".join(node_urls(ns, a.qdrant.replicas)),
                    "QDRANT_COLLECTION": QDRANT_COLLECTION,
                    "S3_ENDPOINT": f"s3.{a.region}.amazonaws.com",
                    "S3_SECURE": "true",
                    "S3_REGION": a.region,
                    "S3_SSE": "kms",
                    "S3_KMS_KEY_ID": a.s3_key_arn,
                    "S3_BUCKET_SNAPSHOTS": a.bucket_names["snapshots"],
                    "SNAPSHOT_KEEP_LAST": str(a.snapshot_retention),
                    "SNAPSHOT_SSE": "kms",
                    "SNAPSHOT_KMS_KEY_ID": a.s3_key_arn,
                },
                secrets={"qdrant-api-key": "qdrant_api_key"},
                depends_on=(self.namespaces, secrets),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        # ---- edge wiring -------------------------------------------------------------------------------
        ports = {"api": 8000, "api-canary": 8000, "frontend": 3000}
        self.bindings = {
            w: TargetGroupBinding(
                f"{name}-{w}-binding",
                TargetGroupBindingArgs(
                    provider=a.provider,
                    namespace=ns,
                    service=w,
                    port=ports[w],
                    target_group_arn=a.target_group_arns[w],
                    alb_security_group_id=a.alb_security_group_id,
                    depends_on=(self.addons.releases["aws-load-balancer-controller"], self.deployments[w]),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for w in ports
            if w in self.deployments
        }
        self.register_outputs(
            {
                "namespace": ns,
                "role_arns": {sa: i.role_arn for sa, i in self.identities.items()},
                "qdrant_url": self.qdrant.url,
            }
        )
