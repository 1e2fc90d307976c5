"""Enum-like values of the cluster, edge, cache and observability resources, checked against botocore's models.

stacks/engine/aws_values.py (the preview's check) covers instance/AMI/log types, TLS policies and cache engines/node
types; this covers the rest these components send, so a misspelling fails here and not half way through a deploy.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
import pytest

from stacks.engine.offline import Record
from tests.infra.platform_graph import STACKS

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
# (resource type, property path with [] for list items, botocore service, shape)
VALUES: list[tuple[str, str, str, str]] = [
    ("aws:acm/certificate:Certificate", "keyAlgorithm", "acm", "KeyAlgorithm"),
    ("aws:eks/cluster:Cluster", "accessConfig.authenticationMode", "eks", "AuthenticationMode"),
    ("aws:eks/cluster:Cluster", "upgradePolicy.supportType", "eks", "SupportType"),
    ("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "accessScope.type", "eks", "AccessScopeType"),
    ("aws:eks/addon:Addon", "resolveConflictsOnCreate", "eks", "ResolveConflicts"),
    ("aws:eks/addon:Addon", "resolveConflictsOnUpdate", "eks", "ResolveConflicts"),
    ("aws:eks/nodeGroup:NodeGroup", "taints.[].effect", "eks", "TaintEffect"),
    ("aws:ec2/launchTemplate:LaunchTemplate", "metadataOptions.httpTokens", "ec2", "LaunchTemplateHttpTokensState"),
    ("aws:ec2/launchTemplate:LaunchTemplate", "tagSpecifications.[].resourceType", "ec2", "ResourceType"),
    ("aws:lb/targetGroup:TargetGroup", "targetType", "elbv2", "TargetTypeEnum"),
    ("aws:lb/listener:Listener", "defaultActions.[].type", "elbv2", "ActionTypeEnum"),
    ("aws:lb/listener:Listener", "defaultActions.[].redirect.statusCode", "elbv2", "RedirectActionStatusCodeEnum"),
    ("aws:lb/listenerRule:ListenerRule", "actions.[].type", "elbv2", "ActionTypeEnum"),
    ("aws:route53/record:Record", "type", "route53", "RRType"),
    ("aws:wafv2/webAcl:WebAcl", "scope", "wafv2", "Scope"),
    (
        "aws:wafv2/webAcl:WebAcl",
        "rules.[].statement.rateBasedStatement.aggregateKeyType",
        "wafv2",
        "RateBasedStatementAggregateKeyType",
    ),
    (RG, "transitEncryptionMode", "elasticache", "TransitEncryptionMode"),
    (RG, "logDeliveryConfigurations.[].logType", "elasticache", "LogType"),
    (RG, "logDeliveryConfigurations.[].logFormat", "elasticache", "LogFormat"),
    (
        RG,
        "logDeliveryConfigurations.[].destinationType",
        "elasticache",
        "DestinationType",
    ),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "comparisonOperator", "cloudwatch", "ComparisonOperator"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "statistic", "cloudwatch", "Statistic"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "metricQueries.[].metric.stat", "cloudwatch", "Statistic"),
    ("aws:budgets/budget:Budget", "budgetType", "budgets", "BudgetType"),
    ("aws:budgets/budget:Budget", "timeUnit", "budgets", "TimeUnit"),
    ("aws:budgets/budget:Budget", "notifications.[].notificationType", "budgets", "NotificationType"),
    ("aws:budgets/budget:Budget", "notifications.[].comparisonOperator", "budgets", "ComparisonOperator"),
    ("aws:budgets/budget:Budget", "notifications.[].thresholdType", "budgets", "ThresholdType"),
]  # fmt: skip


@functools.lru_cache(maxsize=64)
def _enum(service: str, shape: str) -> frozenset[str]:
    values = botocore.session.get_session().get_service_model(service).shape_for(shape).enum
    assert values, f"{service}.{shape} has no enum in this botocore"
    return frozenset(values)


def _at(value: Any, path: list[str]) -> list[Any]:
    if not path:
        return [value]
    head, rest = path[0], path[1:]
    if head == "[]":
        return [v for item in (value or []) for v in _at(item, rest)]
    if isinstance(value, dict) and value.get(head) is not None:
        return _at(value[head], rest)
    return []


@pytest.mark.parametrize("stack", STACKS)
def test_enum_like_values_are_real(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    checked = 0
    for type_, path, service, shape in VALUES:
        found = [v for r in record.of_type(type_) for v in _at(r.inputs, path.split("."))]
        assert found, f"{type_}.{path}: no value recorded (did the property move?)"
        for value in found:
            assert value in _enum(service, shape), f"{type_}.{path}: {value!r} not in botocore {service}.{shape}"
            checked += 1
    assert checked >= len(VALUES)
