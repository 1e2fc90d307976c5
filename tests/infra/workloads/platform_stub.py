"""Workloads under the offline engine, built against stand-in platform outputs.

`wl_records[stack]` runs `Workloads` alone (a fake Kubernetes provider, ARNs and names shaped like the platform's)
through `run_stack(..., program=...)`: the same config loading and mapping (`stacks.workloads_args.workloads_args`) as
the full program, without depending on the rest of the platform for these tests.
"""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

from infra.network import subnet_layout
from infra.node_group import GPU_LABEL, GPU_TAINT
from infra.workloads import Workloads
from infra.workloads.frontend import FrontendSettings
from infra.workloads.network_policies import peer_cidrs
from stacks.config import StackConfig
from stacks.engine.offline import Record, run_stack
from stacks.workloads_args import workloads_args

ACCOUNT = "123456789012"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
BUCKETS = ("pages", "snapshots", "models", "audit")
SECRET_IDS = ("qdrant-api-key", "llm-api-key", "cache-auth", "jwt", "frontend-auth")


def platform(cfg: StackConfig) -> dict[str, Any]:
    prefix = cfg.physical_name()
    tgs = {
        t: f"arn:aws:elasticloadbalancing:{cfg.region}:{ACCOUNT}:targetgroup/{prefix}-{t}/0123456789abcdef"
        for t in ("api", "frontend", "api-canary")
    }
    return {
        "provider": k8s.Provider("k8s", kubeconfig="{}"),
        "cluster_name": prefix,
        "oidc_provider_arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}",
        "oidc_issuer": ISSUER,
        "storage_class_name": "gp3-encrypted",
        "gpu_taint": GPU_TAINT,
        "gpu_label": GPU_LABEL,
        "vpc_id": "vpc-0123456789abcdef0",
        **peer_cidrs(subnet_layout(cfg.network.vpc_cidr, cfg.network.az_count)),
        "target_group_arns": tgs,
        "cache_endpoint": f"master.{prefix}.abcdef.use1.cache.amazonaws.com",
        "cache_port": 6379,
        "bucket_names": {b: cfg.physical_name(b) for b in BUCKETS},
        "bucket_arns": {b: f"arn:aws:s3:::{cfg.physical_name(b)}" for b in BUCKETS},
        "s3_key_arn": f"arn:aws:kms:{cfg.region}:{ACCOUNT}:key/11111111-1111-1111-1111-111111111111",
        "secrets_key_arn": f"arn:aws:kms:{cfg.region}:{ACCOUNT}:key/22222222-2222-2222-2222-222222222222",
        "secret_names": {s: f"{prefix}/{s}" for s in SECRET_IDS},
        "secret_arns": [
            f"arn:aws:secretsmanager:{cfg.region}:{ACCOUNT}:secret:{prefix}/{s}-AbCdEf" for s in SECRET_IDS
        ],
        "frontend_settings": FrontendSettings(
            app_origin=f"https://{cfg.edge.domain}",
            api_url=f"https://{cfg.edge.api_subdomain}.{cfg.edge.domain}",
            pages_image_origin=f"https://{cfg.physical_name('pages')}.s3.{cfg.region}.amazonaws.com",
            auth_issuer=f"https://cognito-idp.{cfg.region}.amazonaws.com/{cfg.region}_AbCdEfGhI",
            auth_client_id="1example23456789abcdefghij",
            environment=cfg.tier,
        ),
    }


def program(cfg: StackConfig) -> None:
    Workloads("workloads", workloads_args(cfg, **platform(cfg)))


_CACHE: dict[str, Record] = {}


def record_workloads(stack: str, overrides: dict[str, Any] | None = None) -> Record:
    import json

    key = json.dumps([stack, overrides or {}], sort_keys=True)
    if key not in _CACHE:
        _CACHE[key] = run_stack(stack, overrides=overrides, program=program)
    return _CACHE[key]
