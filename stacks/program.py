"""The composition root: builds the components in dependency order from the validated StackConfig and exports
what operators need. The only place that maps config onto component Args; components never read config.

Each section below is owned by the component's author; keep the order (later components take earlier outputs).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.bucket_alarms import BucketLimits
from infra.cache import Cache, CacheArgs
from infra.cdn import Cdn, CdnArgs, OriginVerifySecret
from infra.ci_runners import CiRunners, CiRunnersArgs
from infra.cluster import AddonVersions, Cluster, ClusterArgs, NodePool
from infra.edge import Edge, EdgeArgs
from infra.frontend_secret import SECRET_KEY as FRONTEND_SECRET
from infra.frontend_secret import FrontendAuthSecret, FrontendAuthSecretArgs
from infra.identity import Identity, IdentityArgs
from infra.keys import Keys, KeysArgs
from infra.network import Network, NetworkArgs
from infra.node_group import cpu_ami_type
from infra.observability import Observability, ObservabilityArgs
from infra.registry import Registry, RegistryArgs
from infra.secrets import JwtSettings, Secrets, SecretsArgs
from infra.service_linked_roles import AUTOSCALING, ServiceLinkedRoles, ServiceLinkedRolesArgs
from infra.storage import Storage, StorageArgs
from infra.workloads import Workloads
from infra.workloads.frontend import FrontendSettings
from infra.workloads.network_policies import peer_cidrs
from stacks.config import ConfigError, StackConfig, config_from_pulumi
from stacks.workloads_args import workloads_args


def build(cfg: StackConfig) -> None:
    """Register every resource of the stack described by `cfg`."""
    _check_registry_account(cfg)
    # ---- platform: keys, network, storage, secrets, registry (no cluster needed yet) -------------------------
    tags = cfg.resource_tags()
    prefix = cfg.physical_name()  # "<namePrefix>-<tier>"
    # Account-level roles the key policies name: created first, so KMS accepts the policies that name them.
    service_roles = ServiceLinkedRoles(
        "service-linked-roles", ServiceLinkedRolesArgs(create=cfg.cluster.create_service_linked_roles, tags=tags)
    )
    keys = Keys(
        "keys",
        KeysArgs(
            name_prefix=prefix, region=cfg.region, autoscaling_role_arn=service_roles.arns[AUTOSCALING], tags=tags
        ),
    )
    network = Network(
        "network",
        NetworkArgs(
            name_prefix=prefix,
            region=cfg.region,
            vpc_cidr=cfg.network.vpc_cidr,
            az_count=cfg.network.az_count,
            nat_gateways=cfg.network.nat_gateways,
            flow_log_retention_days=cfg.network.flow_log_retention_days,
            interface_endpoints=cfg.network.interface_endpoints,
            logs_key_arn=keys.logs.arn,
            tags=tags,
        ),
    )
    sc = cfg.storage
    storage = Storage(
        "storage",
        StorageArgs(
            name_prefix=prefix,
            # Bucket names are global: they carry the account id, needed as a plain value to build and check them
            # (a synchronous invoke; the engine answers it in preview too).
            account_id=aws.get_caller_identity().account_id,
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
    # ---- identity: every stack has a working OIDC issuer (Cognito unless workloads.auth is external) ---------
    # An external IdP (workloads.auth) when configured, else the stack's own Cognito user pool.
    auth = cfg.workloads.auth
    identity: Identity | None = None
    if auth is not None:
        jwt = JwtSettings(issuer_url=auth.issuer_url, audience=auth.audience, jwks_url=auth.jwks_url)
    else:
        identity = Identity(
            "identity",
            IdentityArgs(
                name_prefix=prefix,
                region=cfg.region,
                # Hosted-domain prefixes are global: the account id keeps ours unique (as for bucket names).
                domain_prefix=f"{prefix}-{aws.get_caller_identity().account_id}",
                app_origin=f"https://{cfg.edge.domain}",
                mfa=cfg.identity.mfa.upper(),
                threat_protection=cfg.identity.threat_protection.upper(),
                deletion_protection=cfg.identity.deletion_protection,
                tags=tags,
            ),
        )
        jwt = JwtSettings(
            issuer_url=identity.issuer_url,
            audience=identity.client_id,
            jwks_url=identity.jwks_url,
            provider="cognito",
        )
        pulumi.export(
            "identity",
            {
                "userPoolId": identity.user_pool_id,
                "clientId": identity.client_id,
                "issuerUrl": identity.issuer_url,
                "hostedUiDomain": identity.hosted_ui_domain,
            },
        )
    secrets = Secrets(
        "secrets",
        SecretsArgs(
            name_prefix=prefix,
            kms_key_arn=keys.secrets.arn,
            llm_api_key=_optional_secret("llmApiKey"),
            sentry_dsn=_optional_secret("sentryDsn"),
            jwt=jwt,
            recovery_window_days=cfg.secrets.recovery_window_days,
            tags=tags,
        ),
    )
    # One shared registry (docs/delivery.md, "Registry model"): only its owner stack builds the repositories;
    # every other stack's image references name them (validated in stacks/config/registry.py).
    rc = cfg.registry
    if rc.owner:
        registry = Registry(
            "registry",
            RegistryArgs(
                name_prefix=cfg.name_prefix,  # no tier: every tier pulls the same repositories
                region=cfg.region,
                keep_releases=rc.keep_releases,
                keep_builds=rc.keep_builds,
                untagged_expiry_days=rc.untagged_expiry_days,
                pull_account_ids=rc.pull_account_ids,
                tags=tags,
            ),
        )
        pulumi.export("ecrRepositoryUrls", registry.urls)
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("privateSubnetIds", network.private_subnet_ids)
    pulumi.export("secretNames", secrets.names)
    pulumi.export("kmsKeyArns", keys.arns)
    pulumi.export("bucketNames", storage.names)
    pulumi.export("replicaBucketNames", {k: b.name for k, b in storage.replicas.items()})
    # ---- platform: cluster, node groups, edge, cache, observability ------------------------------------------
    cc = cfg.cluster
    # CI's deploy role gets cluster admin and its preview role read-only access, both from config: a plan must
    # not depend on who computes it (`pulumi up --plan` applies the preview role's plan with the deploy role).
    # Only a dev stack without deployRoleArn falls back to the identity running `pulumi up` (a personal stack;
    # an assumed-role session resolves to its role).
    caller = aws.get_caller_identity_output()
    deployer_role_arn: pulumi.Input[str] = (
        cc.deploy_role_arn or aws.iam.get_session_context_output(arn=caller.arn).issuer_arn
    )
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            cluster_name=prefix,
            kubernetes_version=cc.kubernetes_version,
            region=cfg.region,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            control_plane_subnet_ids=network.control_subnet_ids,
            endpoint_public_access=cc.endpoint_public_access,
            public_access_cidrs=cc.public_access_cidrs,
            eks_key_arn=keys.eks.arn,
            ebs_key_arn=keys.ebs.arn,
            logs_key_arn=keys.logs.arn,
            log_retention_days=cc.log_retention_days,
            admin_role_arns=cc.admin_role_arns,
            deployer_role_arn=deployer_role_arn,
            viewer_role_arns=[cc.preview_role_arn] if cc.preview_role_arn else [],
            addons=AddonVersions(**cc.addons.model_dump()),
            # The AMI follows the instance family: AL2023 x86_64, or ARM_64 for Graviton types.
            system_nodes=NodePool(
                ami_type=cpu_ami_type(cc.system_nodes.instance_types), **cc.system_nodes.model_dump()
            ),
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
    # ---- CI runners: deploy from inside the VPC (the endpoint is private outside dev) ------------------------
    dc = cfg.delivery
    if dc.runner:
        assert dc.github_repository and dc.code_connection_arn  # DeliveryConfig requires both when runner is on
        runners = CiRunners(
            "ci-runners",
            CiRunnersArgs(
                name_prefix=prefix,
                region=cfg.region,
                account_id=caller.account_id,
                github_repository=dc.github_repository,
                code_connection_arn=dc.code_connection_arn,
                compute_type=dc.runner_compute_type,
                build_timeout_minutes=dc.runner_timeout_minutes,
                vpc_id=network.vpc_id,
                private_subnet_ids=network.private_subnet_ids,
                cluster_security_group_id=cluster.cluster_security_group_id,
                logs_key_arn=keys.logs.arn,
                log_retention_days=cc.log_retention_days,
                tags=tags,
            ),
        )
        pulumi.export("ciRunnerProject", runners.project_name)
    ec = cfg.edge
    # CloudFront fronts the apex whenever a frontend serves it; the ALB's apex rule then requires this secret
    # (the origin header CloudFront adds), so browsers cannot bypass the CDN's WAF and headers policy.
    origin_verify = OriginVerifySecret("cdn-origin-verify").value if cfg.workloads.frontend is not None else None
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
            frontend_enabled=cfg.workloads.frontend is not None,
            canary_weight=cfg.workloads.canary.weight if cfg.workloads.canary else None,
            app_origin_verify=origin_verify,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(depends_on=[storage.buckets["access-logs"]]),
    )
    if origin_verify is not None:
        cdn = Cdn(
            "cdn",
            CdnArgs(
                name_prefix=prefix,
                app_host=edge.app_host,
                hosted_zone_id=ec.hosted_zone_id,
                alb_dns_name=edge.alb_dns_name,
                origin_verify=origin_verify,
                waf_rate_limit=ec.waf_rate_limit,
                log_retention_days=ec.waf_log_retention_days,
                account_id=caller.account_id,
                tags=tags,
            ),
        )
        pulumi.export("cdnDomainName", cdn.domain_name)
        pulumi.export("cdnWebAclArn", cdn.firewall.web_acl_arn)
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
            # The scraper's ENIs go to the `control` tier, apart from the pods: NetworkPolicies admit scrapes
            # from those CIDRs only (infra/workloads/network_policies.py).
            scraper_subnet_ids=network.control_subnet_ids,
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
            alb_4xx_rate_percent=oc.alb_4xx_rate_percent,
            cache_member_clusters=cache.member_clusters,
            cache_memory_percent=oc.cache_memory_percent,
            # Every bucket gets size and object-count alarms; replicas in their own region.
            buckets={k: v for k, v in storage.physical_names.items() if k in storage.buckets},
            replica_buckets={k: v for k, v in storage.physical_names.items() if k not in storage.buckets},
            replica_region=cfg.replica_region if storage.replicas else None,
            bucket_limits={k: BucketLimits(**v.model_dump()) for k, v in cfg.storage.bucket_limits.items()},
            tags=tags,
        ),
    )
    pulumi.export("prometheusEndpoint", observability.prometheus_endpoint)
    pulumi.export("alertsTopicArn", observability.topic_arn)
    # The canary gate (stacks/verify/canary.py) watches these alarms while it raises the canary's weight.
    pulumi.export("alarmNames", [a.name for a in observability.alarms.alarms.values()])
    # ---- frontend: its secrets and stack settings; the config layer requires the Cognito pool ----------------
    frontend_settings: FrontendSettings | None = None
    frontend_secret_names: dict[str, pulumi.Output[str]] = {}
    frontend_secret_arns: list[pulumi.Output[str]] = []
    if cfg.workloads.frontend is not None and identity is not None:
        frontend_secret = FrontendAuthSecret(
            "frontend-auth",
            FrontendAuthSecretArgs(
                name_prefix=prefix,
                kms_key_arn=keys.secrets.arn,
                client_secret=identity.client_secret,
                recovery_window_days=cfg.secrets.recovery_window_days,
                tags=tags,
            ),
        )
        frontend_secret_names = {FRONTEND_SECRET: frontend_secret.name}
        frontend_secret_arns = [frontend_secret.arn]
        frontend_settings = FrontendSettings(
            app_origin=f"https://{edge.app_host}",
            api_url=f"https://{edge.api_host}",
            # Presigned page URLs are virtual-hosted S3 URLs (minio's default for AWS endpoints).
            pages_image_origin=storage.names["pages"].apply(lambda b: f"https://{b}.s3.{cfg.region}.amazonaws.com"),
            auth_issuer=identity.issuer_url,
            auth_client_id=identity.client_id,
            environment=cfg.tier,
            sentry="sentry-dsn" in secrets.names,
        )
    # ---- workloads: the Kubernetes side (app pods, Qdrant, snapshots) on the platform above ------------------
    workloads = Workloads(
        "workloads",
        workloads_args(
            cfg,
            provider=cluster.provider,
            cluster_name=cluster.name,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            storage_class_name=cluster.storage_class_name,
            gpu_taint=Cluster.GPU_TAINT,
            gpu_label=Cluster.GPU_LABEL,
            vpc_id=network.vpc_id,
            # NetworkPolicy peers from the subnets chosen above: ALB (edge: public), cluster and scraper
            # (control), nodes/pods and cache (private).
            **peer_cidrs(network.subnet_cidrs),
            target_group_arns=edge.target_group_arns,
            cache_endpoint=cache.primary_endpoint,
            cache_port=cache.port,
            bucket_names=storage.names,
            bucket_arns=storage.arns,
            s3_key_arn=keys.s3.arn,
            secrets_key_arn=keys.secrets.arn,
            secret_names={**secrets.names, **frontend_secret_names},
            secret_arns=[*secrets.arns, *frontend_secret_arns],
            frontend_settings=frontend_settings,
        ),
        opts=pulumi.ResourceOptions(depends_on=[cluster.storage_class]),
    )
    pulumi.export("workloadRoleArns", {sa: i.role_arn for sa, i in workloads.identities.items()})
    # The images this apply deploys: the deploy workflow records them as the rollback target of the next apply.
    built = ("api", "worker", "embedder", "frontend")
    pulumi.export("images", {k: w.image for k in built if (w := getattr(cfg.workloads, k)) is not None})
    # What runs, not what the committed file says: promote.py rollout compares against these two outputs.
    canary = cfg.workloads.canary
    pulumi.export("canary", {"image": canary.image, "weight": canary.weight} if canary else None)
    pulumi.export("tier", cfg.tier)
    pulumi.export("region", cfg.region)


def _check_registry_account(cfg: StackConfig) -> None:
    """The owner creates the repositories where it deploys: that account must be the one every image reference
    names (registry.accountId), or the tiers would pull from repositories that do not exist."""
    if not cfg.registry.owner:
        return
    account = aws.get_caller_identity().account_id
    if account != cfg.registry.account_id:
        raise ConfigError(
            pulumi.get_stack(),
            [
                (
                    "registry.accountId",
                    f"{cfg.registry.account_id!r} is not the account this owner stack deploys to ({account}); "
                    "set it to that account, or make the stack in that account the owner",
                )
            ],
        )


def _optional_secret(key: str) -> pulumi.Output[str] | None:
    """An optional secret (stacks.config.SECRET_KEYS) as a secret Output, or None when the stack does not set it.

    Whether it is set decides which resources exist, so it is read as a plain value here (get_config: no
    plain-read warning) and leaves this function only wrapped as a secret. config_from_pulumi has already refused
    a value that was not set with --secret.
    """
    value = pulumi.runtime.get_config(f"visionrag:{key}")
    return pulumi.Output.secret(value) if value else None


def main() -> None:
    """Entry point of the real CLI (root __main__.py): config is validated before any resource exists."""
    cfg = config_from_pulumi(pulumi.get_stack())
    build(cfg)
