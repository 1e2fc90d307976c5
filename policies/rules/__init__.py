"""The pack's policies, by domain. ``ALL_POLICIES`` is what ``policies/__main__.py`` hands to ``PolicyPack`` and
what the offline evaluator runs: one list, so the two paths cannot drift apart."""

from __future__ import annotations

from pulumi_policy import Policy

from policies.rules import (
    cache,
    cdn,
    cluster,
    cost,
    edge,
    helm_releases,
    identity,
    image_admission,
    keys,
    kubernetes,
    malware,
    network,
    node_capacity,
    registry,
    secrets,
    storage,
    storage_alarms,
)

DOMAINS: dict[str, list[Policy]] = {
    "storage": storage.POLICIES + storage_alarms.POLICIES,
    "cache": cache.POLICIES,
    "keys": keys.POLICIES,
    "network": network.POLICIES,
    "cluster": cluster.POLICIES + node_capacity.POLICIES,
    "identity": identity.POLICIES,
    "edge": edge.POLICIES,
    "cdn": cdn.POLICIES,
    "registry": registry.POLICIES,
    "secrets": secrets.POLICIES,
    "kubernetes": kubernetes.POLICIES,
    "malware": malware.POLICIES,
    "helm": helm_releases.POLICIES,
    "admission": image_admission.POLICIES,
    "cost": cost.POLICIES,
}
ALL_POLICIES: list[Policy] = [p for policies in DOMAINS.values() for p in policies]
BY_NAME: dict[str, Policy] = {p.name: p for p in ALL_POLICIES}
DOMAIN_OF: dict[str, str] = {p.name: domain for domain, policies in DOMAINS.items() for p in policies}

if len(BY_NAME) != len(ALL_POLICIES):
    raise RuntimeError("duplicate policy names in the pack")
