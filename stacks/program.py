"""The composition root: builds the components in dependency order from the validated StackConfig and exports
what operators need. The only place that maps config onto component Args; components never read config.

Each section below is owned by the component's author; keep the order (later components take earlier outputs).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra.cache import Cache, CacheArgs
from infra.cluster import AddonVersions, Cluster, ClusterArgs, NodePool
from infra.edge import Edge, EdgeArgs
from infra.keys import Keys, KeysArgs
from infra.network import Network, NetworkArgs
from infra.observability import Observability, ObservabilityArgs
from infra.registry import Registry, RegistryArgs
from infra.secrets import JwtSettings, Secrets, SecretsArgs
from infra.storage import Storage, StorageArgs
from infra.workloads import Workloads, WorkloadsArgs, WorkloadSpec
from infra.workloads.container import Resources
from stacks.config import StackConfig, config_from_pulumi
from stacks.config.workloads import WorkloadConfig


def build(cfg: StackConfig) -> None:
    """Register every resource of the stack described by `cfg`."""
    # ---- platform: keys, network, storage, secrets, registry (issue 3) -------------------------------
    tags = {"project": "visionrag", "tier": cfg.tier, **cfg.tags}
    prefix = cfg.physical_name()  # "<namePrefix>-<tier>"
    keys = Keys("keys", KeysArgs(name_prefix=prefix, region=cfg.region, tags=tags))
    network = Network(
        "network",
        NetworkArgs(
            name_prefix=prefix,
            region=cfg.region,
            vpc_cidr=cfg.network.vpc_cidr,
            az_count=cfg.network.az_count,
            nat_gateways=cfg.network.nat_gateways,
            flow_log_retention_days=cfg.network.flow_log_retention_days,
            logs_key_arn=keys.logs.arn,
            tags=tags,
        ),
    )
    sc = cfg.storage
    storage = Storage(
        "storage",
        StorageArgs(
            name_prefix=prefix,
            region=cfg.region,
            s3_key_arn=keys.s3.arn,
            noncurrent_version_expiry_days=sc.noncurrent_version_expiry_days,
            snapshot_retention_days=sc.snapshot_retention_days,
            access_log_retention_days=sc.access_log_retention_days,
            audit_object_lock=sc.audit_object_lock,
            audit_retention_days=sc.audit_retention_days,
            replication=sc.replication,
            replica_region=cfg.replica_region if sc.replication else None,
            alb_log_prefix=cfg.edge.access_log_prefix,
            tags=tags,
        ),
    )
    auth = cfg.workloads.auth
    jwt = JwtSettings(issuer_url=auth.issuer_url, audience=auth.audience, jwks_url=auth.jwks_url) if auth else None
    secrets = Secrets(
        "secrets",
        SecretsArgs(
            name_prefix=prefix,
            kms_key_arn=keys.secrets.arn,
            llm_api_key=pulumi.Config("visionrag").require_secret("llmApiKey"),
            sentry_dsn=_sentry_dsn(),
            jwt=jwt,
            tags=tags,
        ),
    )
    registry = Registry(
        "registry",
        RegistryArgs(
            # No tier: each tier's account holds its own copy of the same repositories (promotion by digest).
            name_prefix=cfg.name_prefix,
            kms_key_arn=keys.ecr.arn,
            keep_releases=cfg.registry.keep_releases,
            untagged_expiry_days=cfg.registry.untagged_expiry_days,
            tags=tags,
        ),
    )
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("privateSubnetIds", network.private_subnet_ids)
    pulumi.export("ecrRepositoryUrls", registry.urls)
    pulumi.export("secretNames", secrets.names)
    pulumi.export("kmsKeyArns", keys.arns)
    pulumi.export("bucketNames", storage.names)
    pulumi.export("replicaBucketNames", {k: b.name for k, b in storage.replicas.items()})
    # ---- platform: cluster, node groups, edge, cache, observability (issue 3) ------------------------
    cc = cfg.cluster
    # The identity running `pulumi up` gets cluster admin through its own access entry (no implicit creator
    # admin); an assumed-role session resolves to its role.
    caller = aws.get_caller_identity_output()
    deployer_role_arn = aws.iam.get_session_context_output(arn=caller.arn).issuer_arn
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            cluster_name=prefix,
            kubernetes_version=cc.kubernetes_version,
            region=cfg.region,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            endpoint_public_access=cc.endpoint_public_access,
            public_access_cidrs=cc.public_access_cidrs,
            eks_key_arn=keys.eks.arn,
            ebs_key_arn=keys.ebs.arn,
            logs_key_arn=keys.logs.arn,
            log_retention_days=cc.log_retention_days,
            admin_role_arns=cc.admin_role_arns,
            deployer_role_arn=deployer_role_arn,
            addons=AddonVersions(**cc.addons.model_dump()),
            system_nodes=NodePool(ami_type="AL2023_x86_64_STANDARD", **cc.system_nodes.model_dump()),
            gpu_nodes=NodePool(**cc.gpu_nodes.model_dump()),
            deletion_protection=cc.deletion_protection,
            tags=tags,
        ),
    )
    pulumi.export("clusterName", cluster.name)
    pulumi.export("clusterEndpoint", cluster.endpoint)
    pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("nodeGroupNames", [ng.node_group.node_group_name for ng in cluster.node_groups.values()])
    ec = cfg.edge
    edge = Edge(
        "edge",
        EdgeArgs(
            name_prefix=prefix,
            domain=ec.domain,
            api_subdomain=ec.api_subdomain,
            hosted_zone_id=ec.hosted_zone_id,
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            node_security_group_id=cluster.node_security_group_id,
            access_logs_bucket=storage.names["access-logs"],
            access_log_prefix=ec.access_log_prefix,
            deletion_protection=ec.deletion_protection,
            waf_rate_limit=ec.waf_rate_limit,
            logs_key_arn=keys.logs.arn,
            log_retention_days=ec.waf_log_retention_days,
            canary_weight=cfg.workloads.canary.weight if cfg.workloads.canary else None,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(depends_on=[storage.buckets["access-logs"]]),
    )
    pulumi.export("albDnsName", edge.alb_dns_name)
    pulumi.export("albArn", edge.alb_arn)
    pulumi.export("webAclArn", edge.waf.web_acl_arn)
    pulumi.export("apiTargetGroupArn", edge.target_group_arns["api"])
    pulumi.export("canaryTargetGroupArn", edge.target_group_arns["api-canary"])
    pulumi.export("apiUrl", f"https://{edge.api_host}")
    pulumi.export("appUrl", f"https://{edge.app_host}")
    kc = cfg.cache
    cache = Cache(
        "cache",
        CacheArgs(
            replication_group_id=prefix,
            engine=kc.engine,
            engine_version=kc.engine_version,
            node_type=kc.node_type,
            num_cache_clusters=kc.num_cache_clusters,
            multi_az=kc.multi_az,
            snapshot_retention_days=kc.snapshot_retention_days,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            allowed_security_group_id=cluster.node_security_group_id,
            region=cfg.region,
            auth_token=secrets.cache_auth_token,
            logs_key_arn=keys.logs.arn,
            log_retention_days=kc.slow_log_retention_days,
            tags=tags,
        ),
    )
    pulumi.export("cacheEndpoint", cache.primary_endpoint)
    oc = cfg.observability
    observability = Observability(
        "observability",
        ObservabilityArgs(
            name_prefix=prefix,
            tier=cfg.tier,
            account_id=caller.account_id,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            cluster_name=cluster.name,
            cluster_arn=cluster.arn,
            cluster_security_group_id=cluster.cluster_security_group_id,
            node_security_group_id=cluster.node_security_group_id,
            k8s_provider=cluster.provider,
            amp_key_arn=keys.logs.arn,
            scrape_interval_seconds=oc.scrape_interval_seconds,
            alarm_emails=oc.alarm_emails,
            monthly_budget_usd=oc.monthly_budget_usd,
            alb_arn_suffix=edge.alb_arn_suffix,
            target_group_arn_suffixes=edge.target_group_arn_suffixes,
            alb_5xx_rate_percent=oc.alb_5xx_rate_percent,
            cache_member_clusters=cache.member_clusters,
            cache_memory_percent=oc.cache_memory_percent,
            pages_bucket_name=storage.names["pages"],
            pages_quota_gib=cfg.storage.pages_quota_gib,
            tags=tags,
        ),
    )
    pulumi.export("prometheusEndpoint", observability.prometheus_endpoint)
    pulumi.export("alertsTopicArn", observability.topic_arn)
    # The canary gate (stacks/verify_canary.py) watches these alarms while it raises the canary's weight.
    pulumi.export("alarmNames", [a.name for a in observability.alarms.alarms.values()])
    # ---- workloads (issue 4) --------------------------------------------------------------------------
    workloads = Workloads(
        "workloads",
        workloads_args(
            cfg,
            provider=cluster.provider,
            cluster_name=cluster.name,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            storage_class_name=cluster.storage_class_name,
            node_security_group_id=cluster.node_security_group_id,
            gpu_taint=Cluster.GPU_TAINT,
            gpu_label=Cluster.GPU_LABEL,
            vpc_id=network.vpc_id,
            vpc_cidr=cfg.network.vpc_cidr,
            alb_security_group_id=edge.alb_security_group_id,
            target_group_arns=edge.target_group_arns,
            cache_endpoint=cache.primary_endpoint,
            cache_port=cache.port,
            bucket_names=storage.names,
            bucket_arns=storage.arns,
            s3_key_arn=keys.s3.arn,
            secrets_key_arn=keys.secrets.arn,
            secret_names=secrets.names,
            secret_arns=secrets.arns,
        ),
        opts=pulumi.ResourceOptions(depends_on=[cluster.storage_class]),
    )
    pulumi.export("workloadRoleArns", {sa: i.role_arn for sa, i in workloads.identities.items()})
    # The images this apply deploys: the deploy workflow records them as the rollback target of the next apply.
    pulumi.export("images", {k: getattr(cfg.workloads, k).image for k in ("api", "worker", "embedder")})
    pulumi.export("tier", cfg.tier)
    pulumi.export("region", cfg.region)


def _sentry_dsn() -> pulumi.Output[str] | None:
    """The Sentry DSN as a secret Output, or None when `visionrag:sentryDsn` is empty (its declared default).

    Whether it is set decides which resources exist, so it is read as a plain value here (get_config: no
    plain-read warning) and leaves this function only wrapped as a secret.
    """
    value = pulumi.runtime.get_config("visionrag:sentryDsn")
    return pulumi.Output.secret(value) if value else None


# ---- workloads (issue 4): config -> WorkloadsArgs ---------------------------------------------------------
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
        tags={"project": "visionrag", "tier": cfg.tier, **cfg.tags},
        kubernetes_version=cfg.cluster.kubernetes_version,
        gpu_nodes_max=cfg.cluster.gpu_nodes.max_size,
        api=_spec(w.api),
        worker=_spec(w.worker),
        embedder=_spec(w.embedder),
        qdrant=_spec(w.qdrant),
        snapshots=_spec(w.snapshots),
        frontend=_spec(w.frontend) if w.frontend else None,
        canary_image=w.canary.image if w.canary else None,
        api_command=w.api_command,
        worker_command=w.worker_command,
        snapshot_command=w.snapshot_command,
        snapshot_schedule=w.snapshot_schedule,
        snapshot_retention=w.snapshot_retention,
        qdrant_storage_gib=w.qdrant_storage_gib,
        qdrant_replication_factor=w.qdrant_replication_factor,
        model_sync_image=w.model_sync_image or w.worker.image,
        embedder_model=w.embedder_model,
        log_level=w.log_level,
        allowed_origins=w.allowed_origins,
        otlp_endpoint=cfg.observability.otlp_endpoint,
        **platform,
    )


def main() -> None:
    """Entry point of the real CLI (root __main__.py): config is validated before any resource exists."""
    cfg = config_from_pulumi(pulumi.get_stack())
    build(cfg)
