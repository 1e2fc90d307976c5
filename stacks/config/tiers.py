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

TIER_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {
        "network": {"azCount": 2, "natGateways": "single", "flowLogRetentionDays": 14},
        "cluster": {
            "endpointPublicAccess": True,  # publicAccessCidrs must be listed in Pulumi.dev.yaml
            "systemNodes": {"instanceTypes": ["m6i.large"], "minSize": 2, "maxSize": 4, "desiredSize": 2},
            "gpuNodes": {"instanceTypes": ["g5.xlarge"], "minSize": 0, "maxSize": 1, "desiredSize": 0},
            "logRetentionDays": 30,
            "deletionProtection": False,
        },
        "storage": {
            "replication": False,
            "noncurrentVersionExpiryDays": 7,
            "snapshotRetentionDays": 7,
            "auditObjectLock": "off",
            "auditRetentionDays": 30,
        },
        "edge": {"wafRateLimit": 2000, "deletionProtection": False},
        "cache": {"numCacheClusters": 1, "multiAz": False},
        "registry": {},
        "observability": {"monthlyBudgetUsd": 1500},
        "workloads": {
            "requireDigests": False,
            "api": {"replicas": 1, "resources": _API},
            "worker": {"replicas": 1, "resources": _SMALL},
            "embedder": {"replicas": 1, "resources": _EMBEDDER, "maxReplicas": 1},
            "qdrant": {"replicas": 1, "resources": _QDRANT},
            "snapshots": {"replicas": 0, "resources": _SMALL},
            "qdrantReplicationFactor": 1,
            "snapshotRetention": 3,
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
        },
        "storage": {
            "replication": False,
            "noncurrentVersionExpiryDays": 30,
            "snapshotRetentionDays": 14,
            "auditObjectLock": "governance",
            "auditRetentionDays": 90,
        },
        "edge": {"wafRateLimit": 2000, "deletionProtection": True},
        "cache": {"numCacheClusters": 2, "multiAz": True},
        "registry": {},
        "observability": {"monthlyBudgetUsd": 4000},
        "workloads": {
            "requireDigests": True,
            "api": {"replicas": 2, "resources": _API, "maxReplicas": 4},
            "worker": {"replicas": 1, "resources": _SMALL},
            "embedder": {"replicas": 1, "resources": _EMBEDDER, "maxReplicas": 2},
            "qdrant": {"replicas": 1, "resources": _QDRANT},
            "snapshots": {"replicas": 0, "resources": _SMALL},
            "qdrantReplicationFactor": 1,
            "snapshotRetention": 7,
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
        },
        "storage": {
            "replication": True,
            "noncurrentVersionExpiryDays": 90,
            "snapshotRetentionDays": 35,
            "auditObjectLock": "compliance",
            "auditRetentionDays": 2555,
        },
        "edge": {"wafRateLimit": 2000, "deletionProtection": True},
        "cache": {"numCacheClusters": 2, "multiAz": True, "nodeType": "cache.r7g.large", "snapshotRetentionDays": 7},
        "registry": {},
        "observability": {"monthlyBudgetUsd": 12000},
        "workloads": {
            "requireDigests": True,
            "api": {"replicas": 3, "resources": _API, "maxReplicas": 10},
            "worker": {"replicas": 2, "resources": _SMALL, "maxReplicas": 6},
            "embedder": {"replicas": 1, "resources": _EMBEDDER, "maxReplicas": 4},
            "qdrant": {"replicas": 3, "resources": _QDRANT},
            "snapshots": {"replicas": 0, "resources": _SMALL},
            "qdrantReplicationFactor": 2,
            "qdrantStorageGib": 200,
            "snapshotRetention": 14,
        },
    },
}
