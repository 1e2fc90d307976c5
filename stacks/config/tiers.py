"""Tier defaults: where each environment starts before its Pulumi.<stack>.yaml overrides.

This is the one place the tiers differ (ARCHITECTURE.md, "Environment tiers"); read the three dicts side by side.
Keys are spelled exactly as in Pulumi.<stack>.yaml (camelCase). Floors that no override may weaken live in
stack.py; account-specific values (domain, hosted zone, images) live in Pulumi.<stack>.yaml.
"""

from __future__ import annotations

from typing import Any

_SMALL = {"cpuRequest": "250m", "cpuLimit": "1", "memoryRequest": "512Mi", "memoryLimit": "1Gi"}
_API = {"cpuRequest": "500m", "cpuLimit": "2", "memoryRequest": "1Gi", "memoryLimit": "2Gi"}
_EMBEDDER = {"cpuRequest": "2", "cpuLimit": "4", "memoryRequest": "12Gi", "memoryLimit": "16Gi"}
_QDRANT = {"cpuRequest": "1", "cpuLimit": "2", "memoryRequest": "4Gi", "memoryLimit": "8Gi"}
# dev's Qdrant holds a few hundred test pages: sized to fit a t3a.medium beside the add-ons (see dev's cluster).
# clamd holds its signature engine in memory (~1.2 GiB) and twice that while a reload builds the next one;
# docs.clamav.net "ClamAV in Docker": 3 GiB minimum, 4 GiB preferred (infra/workloads/clamav.py).
_CLAMAV = {"cpuRequest": "500m", "cpuLimit": "2", "memoryRequest": "3Gi", "memoryLimit": "4Gi"}
_QDRANT_DEV = {"cpuRequest": "500m", "cpuLimit": "1", "memoryRequest": "768Mi", "memoryLimit": "2Gi"}
# The api's rate limits (workloads.rateLimits): per client IP per minute on every route, per identity for search,
# chat and upload. The same start in every tier (the app's own defaults); a stack tunes them to its traffic.
_RATE_LIMITS = {"perIpPerMinute": 300, "search": "60/minute", "chat": "20/minute", "upload": "10/minute"}
# Daily quotas (workloads.quotas, app/api/quotas.py): search/chat requests and LLM tokens per tenant, upload pages
# and MiB per identity. Starting points sized to a team's day of use, not to traffic forecasts; a stack tunes them.
# dev's are small so a runaway script or test loop meets them the same day.
_QUOTAS_DEV = {
    "searchPerDay": 2000,
    "chatPerDay": 200,
    "llmTokensPerDay": 200_000,
    "uploadPagesPerDay": 1000,
    "uploadMbPerDay": 500,
}
_QUOTAS = {
    "searchPerDay": 20_000,
    "chatPerDay": 2000,
    "llmTokensPerDay": 2_000_000,
    "uploadPagesPerDay": 5000,
    "uploadMbPerDay": 2048,
}

# Alarm thresholds per bucket (storage.bucketLimits; infra/bucket_alarms.py): daily size in GiB and object count,
# versions and a replica's own copy included. A page is a JPEG (~100-300 KiB) plus its share of the PDF, so
# pages' size grows ~0.5 GiB per 2,000 pages. Set to page well before cost or a runaway job becomes a bill.
_BUCKET_LIMITS_DEV = {
    "pages": {"sizeGib": 50, "objects": 500_000},
    "snapshots": {"sizeGib": 50, "objects": 10_000},
    "audit": {"sizeGib": 5, "objects": 1_000_000},
    "models": {"sizeGib": 20, "objects": 10_000},
    "access-logs": {"sizeGib": 20, "objects": 5_000_000},
}
_BUCKET_LIMITS_STAGING = {
    "pages": {"sizeGib": 200, "objects": 2_000_000},
    "snapshots": {"sizeGib": 200, "objects": 20_000},
    "audit": {"sizeGib": 20, "objects": 5_000_000},
    "models": {"sizeGib": 50, "objects": 10_000},
    "access-logs": {"sizeGib": 100, "objects": 20_000_000},
}
_BUCKET_LIMITS_PROD = {
    "pages": {"sizeGib": 500, "objects": 10_000_000},
    "snapshots": {"sizeGib": 2000, "objects": 100_000},
    "audit": {"sizeGib": 100, "objects": 50_000_000},
    "models": {"sizeGib": 50, "objects": 10_000},
    "access-logs": {"sizeGib": 500, "objects": 100_000_000},
}

TIER_DEFAULTS: dict[str, dict[str, Any]] = {
    # dev's idle cost (issue 15, P4; `python -m stacks preview dev` prices it, policies/config/dev.json holds the
    # budget): the choices below (no interface endpoints, two t3a.medium system nodes, cache.t4g.micro, a 20 GiB
    # Qdrant volume) took the platform from $459.19 to $250.78 a month; with the CDN added ($278.00), Spot system
    # nodes keep it at $247.39, under the issue's $260. Staging and prod keep their availability.
    "dev": {
        # No interface endpoints (7 x 2 AZ x $0.01/h = $102/month): dev's AWS API calls (image pulls, STS, logs)
        # go through its NAT gateway, whose $0.045/GB costs cents at dev's volume.
        "network": {"azCount": 2, "natGateways": "single", "flowLogRetentionDays": 14, "interfaceEndpoints": []},
        "cluster": {
            "endpointPublicAccess": True,  # publicAccessCidrs must be listed in Pulumi.dev.yaml
            # Two burstable t3a.medium (2 vCPU / 4 GiB, $0.0376/h) instead of two m6i.large ($0.096/h): $61 not
            # $156. Two nodes keep the two AZs and the add-ons' two replicas apart; the requests fit with room
            # (tests/stacks/test_tiers.py sums them against the allocatable). x86_64, not Graviton (t4g is
            # cheaper still): the api/worker images are built for linux/amd64 only (ci.yml), so ARM nodes could
            # not run them. 40 GiB root volumes: the images and logs of a 2-node dev cluster, not 100.
            # SPOT (dev only; stack.py refuses it in staging and prod): dev tolerates a node being reclaimed at
            # two minutes' notice (EKS drains it and Capacity Rebalancing starts its replacement first), and Spot
            # sells spare capacity far under on-demand: the estimate assumes 40% of the dearer listed type, ~$31
            # not $61. t3.medium beside t3a.medium: the same 2 vCPU / 4 GiB x86_64 shape from a second Spot pool.
            "systemNodes": {
                "instanceTypes": ["t3a.medium", "t3.medium"],
                "capacityType": "SPOT",
                "minSize": 2,
                "maxSize": 4,
                "desiredSize": 2,
                "diskSizeGib": 40,
            },
            "gpuNodes": {"instanceTypes": ["g5.xlarge"], "minSize": 0, "maxSize": 1, "desiredSize": 0},
            "logRetentionDays": 30,
            "deletionProtection": False,
            "createServiceLinkedRoles": True,  # a fresh account has none; set false where they exist
        },
        "storage": {
            "replication": False,
            "noncurrentVersionExpiryDays": 7,
            "snapshotRetentionDays": 7,
            "auditObjectLock": "off",
            "auditRetentionDays": 30,
            "bucketLimits": _BUCKET_LIMITS_DEV,
        },
        "edge": {"wafRateLimit": 2000, "deletionProtection": False},
        # cache.t4g.micro (0.5 GiB): dev's queue and rate-limit keys are a few MB; $9 not $19 a month.
        "cache": {"numCacheClusters": 1, "multiAz": False, "nodeType": "cache.t4g.micro"},
        # Not the registry owner unless Pulumi.<stack>.yaml says so (exactly one stack is: docs/delivery.md).
        "registry": {"owner": False},
        # The idle target (issue 15: <= $260); equal to policies/config/dev.json's budget. GPU hours on top of it
        # raise the alert.
        # traceSampleRatio: every new trace, dev's volume is small (parent-based: whole traces are kept or dropped).
        "observability": {"monthlyBudgetUsd": 260, "alb4XxRatePercent": 50, "traceSampleRatio": 1.0},
        "identity": {"mfa": "optional", "threatProtection": "off", "deletionProtection": False},
        "secrets": {"recoveryWindowDays": 0},  # destroy-and-recreate: a deleted secret's name is free at once
        "delivery": {"runner": False},  # optional: dev's endpoint may be public behind an allow-list
        "workloads": {
            "requireDigests": False,
            "rateLimits": _RATE_LIMITS,
            "quotas": _QUOTAS_DEV,
            # Off in dev: a dev stack may point at an OpenAI-compatible gateway without /moderations.
            "llmModeration": False,
            "api": {"replicas": 1, "resources": _API},
            "worker": {"replicas": 1, "resources": _SMALL},
            "embedder": {"replicas": 1, "resources": _EMBEDDER, "maxReplicas": 1},
            "qdrant": {"replicas": 1, "resources": _QDRANT_DEV},
            "frontend": {"replicas": 1, "resources": _SMALL, "maxReplicas": 2},
            "snapshots": {"replicas": 0, "resources": _SMALL},
            "qdrantReplicationFactor": 1,
            "qdrantStorageGib": 20,
            "snapshotRetention": 3,
            # No signed-image admission: dev runs tags and images built on branches (stack.py keeps it on elsewhere).
            "imageAdmission": {"enabled": False},
            "restoreDrill": {"enabled": False},
        },
    },
    "staging": {
        "network": {"azCount": 3, "natGateways": "perAz", "flowLogRetentionDays": 90},
        "cluster": {
            "endpointPublicAccess": False,
            "systemNodes": {"instanceTypes": ["m6i.large"], "minSize": 3, "maxSize": 6, "desiredSize": 3},
            "gpuNodes": {"instanceTypes": ["g5.xlarge"], "minSize": 0, "maxSize": 2, "desiredSize": 0},
            "logRetentionDays": 90,
            "deletionProtection": True,
            "createServiceLinkedRoles": True,
        },
        "storage": {
            "replication": False,
            "noncurrentVersionExpiryDays": 30,
            "snapshotRetentionDays": 14,
            "auditObjectLock": "governance",
            "auditRetentionDays": 90,
            "bucketLimits": _BUCKET_LIMITS_STAGING,
        },
        "edge": {"wafRateLimit": 2000, "deletionProtection": True},
        "cache": {"numCacheClusters": 2, "multiAz": True},
        "registry": {"owner": False},
        # traceSampleRatio: a quarter of new traces (parent-based: whole traces are kept or dropped).
        "observability": {"monthlyBudgetUsd": 4000, "alb4XxRatePercent": 30, "traceSampleRatio": 0.25},
        "identity": {"mfa": "on", "threatProtection": "audit", "deletionProtection": True},
        "secrets": {"recoveryWindowDays": 30},
        "delivery": {"runner": True},  # the endpoint is private: CI deploys from inside the VPC
        "workloads": {
            "requireDigests": True,
            "rateLimits": _RATE_LIMITS,
            "quotas": _QUOTAS,
            "llmModeration": True,  # the question and the answer (app/api/llm.py)
            "api": {"replicas": 2, "resources": _API, "maxReplicas": 4},
            "worker": {"replicas": 1, "resources": _SMALL},
            "embedder": {"replicas": 1, "resources": _EMBEDDER, "maxReplicas": 2},
            "qdrant": {"replicas": 1, "resources": _QDRANT},
            "frontend": {"replicas": 2, "resources": _SMALL, "maxReplicas": 4},
            "snapshots": {"replicas": 0, "resources": _SMALL},
            # Uploads are scanned (dev has no scanner unless its yaml adds one): the image is stack config.
            "clamav": {"replicas": 2, "resources": _CLAMAV},
            "qdrantReplicationFactor": 1,
            "snapshotRetention": 7,
            "imageAdmission": {"enabled": True},
            "restoreDrill": {"enabled": False},
        },
    },
    "prod": {
        "network": {"azCount": 3, "natGateways": "perAz", "flowLogRetentionDays": 365},
        "cluster": {
            "endpointPublicAccess": False,
            "systemNodes": {"instanceTypes": ["m6i.xlarge"], "minSize": 3, "maxSize": 9, "desiredSize": 3},
            "gpuNodes": {"instanceTypes": ["g5.2xlarge"], "minSize": 1, "maxSize": 4, "desiredSize": 1},
            "logRetentionDays": 365,
            "deletionProtection": True,
            "createServiceLinkedRoles": True,
        },
        "storage": {
            "replication": True,
            "noncurrentVersionExpiryDays": 90,
            "snapshotRetentionDays": 35,
            "auditObjectLock": "compliance",
            "auditRetentionDays": 2555,
            "bucketLimits": _BUCKET_LIMITS_PROD,
        },
        "edge": {"wafRateLimit": 2000, "deletionProtection": True},
        "cache": {"numCacheClusters": 2, "multiAz": True, "nodeType": "cache.r7g.large", "snapshotRetentionDays": 7},
        "registry": {"owner": False},
        # traceSampleRatio: one new trace in twenty (X-Ray bills per trace recorded; parent-based: whole traces).
        "observability": {"monthlyBudgetUsd": 12000, "alb4XxRatePercent": 20, "traceSampleRatio": 0.05},
        "identity": {"mfa": "on", "threatProtection": "enforced", "deletionProtection": True},
        "secrets": {"recoveryWindowDays": 30},
        "delivery": {"runner": True},  # the endpoint is private: CI deploys from inside the VPC
        "workloads": {
            "requireDigests": True,
            "rateLimits": _RATE_LIMITS,
            "quotas": _QUOTAS,
            "llmModeration": True,  # the question and the answer (app/api/llm.py)
            "api": {"replicas": 3, "resources": _API, "maxReplicas": 10},
            "worker": {"replicas": 2, "resources": _SMALL, "maxReplicas": 6},
            "embedder": {"replicas": 1, "resources": _EMBEDDER, "maxReplicas": 4},
            "qdrant": {"replicas": 3, "resources": _QDRANT},
            "frontend": {"replicas": 3, "resources": _SMALL, "maxReplicas": 6},
            "snapshots": {"replicas": 0, "resources": _SMALL},
            "clamav": {"replicas": 2, "resources": _CLAMAV},
            "qdrantReplicationFactor": 2,
            "qdrantStorageGib": 200,
            "snapshotRetention": 14,
            "imageAdmission": {"enabled": True, "replicas": 3},
            # The monthly restore drill (infra/workloads/restore_drill.py): prod proves its backups restore.
            "restoreDrill": {"enabled": True},
        },
    },
}
