"""Observability: AMP workspace + scraper, dashboards, encrypted alerts topic, alarms, monthly budget."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from infra.alarms import MIN_REQUESTS_FOR_4XX_RATE
from infra.bucket_alarms import BucketLimits
from infra.observability import SCRAPE_PORTS, SCRAPER_USER, ObservabilityArgs, scrape_configuration
from infra.observability import _validate as _validate_observability
from infra.scrape_config import MIN_SCRAPE_INTERVAL_SECONDS
from stacks.config import ConfigError
from stacks.engine.offline import Record, RecordedResource
from tests.infra.platform_graph import STACKS, component, statements, under

DASHBOARDS = Path(__file__).resolve().parents[2] / "infra" / "dashboards"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

# Exporters we do not run in-process here: their documented metric names.
# dcgm-exporter's default counters (etc/default-counters.csv of NVIDIA/dcgm-exporter).
DCGM_METRICS = {
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
}
# Qdrant's /metrics (https://qdrant.tech/documentation/guides/monitoring/).
QDRANT_METRICS = {
    "app_info",
    "collections_total",
    "collections_vector_total",
    "rest_responses_total",
    "rest_responses_fail_total",
    "rest_responses_avg_duration_seconds",
    "grpc_responses_total",
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def _obs(record: Record) -> RecordedResource:
    return component(record, "visionrag:infra:Observability")


# ---- dashboards ------------------------------------------------------------------------------------------------
def _app_metric_names() -> set[str]:
    """What the API really exposes: its own counters and prometheus-fastapi-instrumentator's defaults."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from prometheus_fastapi_instrumentator import Instrumentator

    import app.core.metrics as app_metrics

    names: set[str] = set()
    for obj in vars(app_metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for family in obj.describe():
                names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    registry = CollectorRegistry()
    api = FastAPI()
    api.get("/ping")(lambda: {})
    Instrumentator(registry=registry).instrument(api)
    TestClient(api).get("/ping")  # the instrumentator registers its metrics when the middleware starts
    for family in registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def _metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values, strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping label lists
    expr = re.sub(r"(?<![\w.])\d+(\.\d+)?([eE][-+]?\d+)?", "", expr)  # numbers (1e-9, 0.95, 60)
    found = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        token, rest = m.group(0), expr[m.end() :].lstrip()
        if rest.startswith("(") or token in PROMQL_WORDS:
            continue
        found.add(token)
    return found


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_dashboards_cover_the_required_views() -> None:
    boards = _dashboards()
    assert set(boards) >= {"api", "indexing", "gpu", "qdrant"}
    uids = [b["uid"] for b in boards.values()]
    assert len(uids) == len(set(uids))
    for name, board in boards.items():
        assert board["panels"], name
        for panel in board["panels"]:
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), (name, panel["title"])
            assert panel["datasource"]["type"] == "prometheus"


def test_dashboards_only_query_metrics_that_exist() -> None:
    known = _app_metric_names() | DCGM_METRICS | QDRANT_METRICS | {"up"}
    # The instrumentator histograms are queried through their series.
    known |= {f"{n}_{s}" for n in known for s in ("bucket", "sum", "count")}
    assert "http_request_duration_seconds" in known and "http_requests_total" in known
    used: dict[str, set[str]] = {}
    for name, board in _dashboards().items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                used.setdefault(name, set()).update(_metrics_in(target["expr"]))
    for name, metrics in used.items():
        assert metrics <= known, f"{name}.json queries unknown metrics {sorted(metrics - known)}"
    assert "http_request_duration_seconds_bucket" in used["api"]
    assert "http_requests_total" in used["api"]
    assert "DCGM_FI_DEV_GPU_UTIL" in used["gpu"]
    assert any(m.startswith("visionrag_index") for m in used["indexing"])
    assert any(m.startswith("rest_responses") for m in used["qdrant"])


def test_metric_extraction_sees_through_promql() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket{a="b"}[5m])))'
    assert _metrics_in(expr) == {"http_request_duration_seconds_bucket"}
    assert _metrics_in("sum(rate(x_total[5m])) / clamp_min(sum(rate(y_total[5m])), 1e-9)") == {"x_total", "y_total"}


# ---- metrics collection --------------------------------------------------------------------------------------------
def test_scrape_configuration_keeps_only_the_metrics_ports() -> None:
    config = yaml.safe_load(scrape_configuration(30))
    assert config["global"]["scrape_interval"] == "30s"
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == set(SCRAPE_PORTS.values())
    assert {9090, 9091, 9400} <= set(SCRAPE_PORTS)
    for port, job in SCRAPE_PORTS.items():
        keep = jobs[job]["relabel_configs"][0]
        assert keep == {
            "source_labels": ["__meta_kubernetes_pod_container_port_number"],
            "regex": str(port),
            "action": "keep",
        }


@pytest.mark.parametrize("stack", STACKS)
def test_amp_workspace_and_scraper(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    obs = _obs(record)
    (ws,) = under(record, obs, "aws:amp/workspace:Workspace")
    assert ws.inputs["kmsKeyArn"] == record.outputs["kmsKeyArns"]["logs"]
    (scraper,) = under(record, obs, "aws:amp/scraper:Scraper")
    eks = next(r for r in record.of_type("aws:eks/cluster:Cluster"))
    assert scraper.inputs["source"]["eks"]["clusterArn"] == eks.outputs["arn"]
    # Its ENIs live in the network's `control` tier (two AZs at least, as AMP requires), apart from the pods.
    control = sorted(
        (r for r in record.of_type("aws:ec2/subnet:Subnet") if "-control-" in r.name), key=lambda r: r.name
    )
    assert len(control) >= 2
    assert sorted(scraper.inputs["source"]["eks"]["subnetIds"]) == sorted(r.outputs["id"] for r in control)
    assert scraper.inputs["destination"]["amp"]["workspaceArn"] == ws.outputs["arn"]
    config = yaml.safe_load(scraper.inputs["scrapeConfiguration"])
    assert {j["job_name"] for j in config["scrape_configs"]} == set(SCRAPE_PORTS.values())
    # Its Kubernetes identity: AMP creates the scraper role's access entry itself under authenticationMode API
    # (user aps-collector-user); a second one from the stack would be refused, so none is declared anywhere.
    entries = record.of_type("aws:eks/accessEntry:AccessEntry")
    assert not under(record, obs, "aws:eks/accessEntry:AccessEntry")
    assert not any("scraper" in str(e.inputs.get("principalArn", "")) for e in entries)
    assert not any(e.inputs.get("userName") == SCRAPER_USER for e in entries)
    (role,) = under(record, obs, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    verbs = {v for rule in role.inputs["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}
    resources = {res for rule in role.inputs["rules"] for res in rule.get("resources", [])}
    assert not any(res.startswith("nodes") or res == "secrets" for res in resources)
    (binding,) = under(record, obs, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert binding.inputs["subjects"] == [
        {"kind": "User", "name": SCRAPER_USER, "apiGroup": "rbac.authorization.k8s.io"}
    ]
    # The binding waits for the scraper (and so for the access entry AMP creates with it).
    assert scraper.urn in binding.dependencies


def test_scrape_interval_floor_is_amps_and_config_refuses_less(record_of: Any) -> None:
    assert MIN_SCRAPE_INTERVAL_SECONDS == 30
    with pytest.raises(ConfigError, match="scrapeIntervalSeconds"):
        record_of("dev", overrides={"visionrag:observability": {"scrapeIntervalSeconds": 15}})
    args = ObservabilityArgs(
        name_prefix="visionrag-dev",
        tier="dev",
        account_id="123456789012",
        vpc_id="vpc-1",
        scraper_subnet_ids=["subnet-a", "subnet-b"],
        cluster_name="visionrag-dev",
        cluster_arn="arn:aws:eks:us-east-1:123456789012:cluster/visionrag-dev",
        cluster_security_group_id="sg-1",
        node_security_group_id="sg-2",
        k8s_provider=None,  # type: ignore[arg-type]  # _validate never touches it
        amp_key_arn="arn:aws:kms:us-east-1:123456789012:key/1",
        scrape_interval_seconds=29,
        alarm_emails=[],
        monthly_budget_usd=100.0,
        alb_arn_suffix="app/x/1",
        target_group_arn_suffixes={},
        alb_5xx_rate_percent=5.0,
        alb_4xx_rate_percent=20.0,
        cache_member_clusters=[],
        cache_memory_percent=80.0,
        buckets={"pages": "pages"},
        bucket_limits={"pages": BucketLimits(size_gib=1, objects=1)},
    )
    with pytest.raises(ValueError, match=r"^scrape_interval_seconds: 29 must be between 30 and 300"):
        _validate_observability(args)
    _validate_observability(dataclasses.replace(args, scrape_interval_seconds=30))
    # Every bucket needs thresholds (a replica uses its source's), and replicas need their region.
    with pytest.raises(ValueError, match=r"bucket_limits: no thresholds for \['models'\]"):
        _validate_observability(dataclasses.replace(args, scrape_interval_seconds=30, buckets={"models": "m"}))
    with pytest.raises(ValueError, match="replica_region"):
        _validate_observability(
            dataclasses.replace(args, scrape_interval_seconds=30, replica_buckets={"pages-replica": "p"})
        )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_scraper_reaches_metrics_ports_only(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    obs = _obs(record)
    (sg,) = under(record, obs, "aws:ec2/securityGroup:SecurityGroup")
    egress = [r.inputs for r in under(record, obs, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
    assert {e["fromPort"] for e in egress} == set(SCRAPE_PORTS) | {443}
    assert all(e["securityGroupId"] == sg.outputs["id"] and e["fromPort"] == e["toPort"] for e in egress)
    assert not any("cidrIpv4" in e for e in egress)
    ingress = [r.inputs for r in under(record, obs, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    assert all(i["referencedSecurityGroupId"] == sg.outputs["id"] for i in ingress)


# ---- alerts ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_alerts_topic_encrypted_with_publishers_scoped(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    obs = _obs(record)
    # The stack region's topic; a stack with replicas has a second one in the replica region (test_bucket_alarms).
    (topic,) = [t for t in under(record, obs, "aws:sns/topic:Topic") if "region" not in t.inputs]
    (key,) = [k for k in under(record, obs, "aws:kms/key:Key") if "region" not in k.inputs]
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    key_st = {s["Sid"]: s for s in statements(json.loads(key.inputs["policy"]))}
    assert key_st["AlertPublishersUseKey"]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    (tp,) = [t for t in under(record, obs, "aws:sns/topicPolicy:TopicPolicy") if "region" not in t.inputs]
    st = {s["Sid"]: s for s in statements(json.loads(tp.inputs["policy"]))}
    assert st["DenyInsecureTransport"]["Effect"] == "Deny"
    assert set(st["AlertPublishers"]["Principal"]["Service"]) == {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    subs = [s for s in under(record, obs, "aws:sns/topicSubscription:TopicSubscription") if "region" not in s.inputs]
    assert sorted(s.inputs["endpoint"] for s in subs) == sorted(record.config.observability.alarm_emails)
    assert all(s.inputs["protocol"] == "email" and s.inputs["topic"] == topic.outputs["arn"] for s in subs)


def _alarms(record: Record) -> dict[str, RecordedResource]:
    """The Alarms component's (bucket alarms are tests/infra/test_bucket_alarms.py's)."""
    prefix = f"{record.config.name_prefix}-{record.config.tier}-"
    alarms = component(record, "visionrag:infra:Alarms")
    return {a.inputs["name"].removeprefix(prefix): a for a in under(record, alarms, ALARM)}


@pytest.mark.parametrize("stack", STACKS)
def test_alarms_cover_edge_and_cache(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    alarms = _alarms(record)
    (topic,) = [
        t.outputs["arn"] for t in under(record, _obs(record), "aws:sns/topic:Topic") if "region" not in t.inputs
    ]
    for a in alarms.values():
        assert a.inputs["alarmActions"] == [topic] and a.inputs["okActions"] == [topic]

    rate = alarms["alb-5xx-rate"].inputs
    assert rate["threshold"] == record.config.observability.alb_5xx_rate_percent
    queries = {q["id"]: q for q in rate["metricQueries"]}
    alb_suffix = next(r for r in record.of_type("aws:lb/loadBalancer:LoadBalancer")).outputs["arnSuffix"]
    assert queries["elb5xx"]["metric"]["dimensions"] == {"LoadBalancer": alb_suffix}
    assert [q["id"] for q in rate["metricQueries"] if q["returnData"]] == ["rate"]
    assert "requests" in queries["rate"]["expression"]

    tgs = {
        r.name.removeprefix("edge-tg-"): r.outputs["arnSuffix"]
        for r in record.of_type("aws:lb/targetGroup:TargetGroup")
    }
    for key, suffix in tgs.items():
        unhealthy = alarms[f"unhealthy-{key}"].inputs
        assert unhealthy["metricName"] == "UnHealthyHostCount"
        assert unhealthy["dimensions"] == {"TargetGroup": suffix, "LoadBalancer": alb_suffix}

    rg = next(r for r in record.of_type("aws:elasticache/replicationGroup:ReplicationGroup"))
    nodes = [k for k in alarms if k.startswith("cache-memory-")]
    assert sorted(alarms[k].inputs["dimensions"]["CacheClusterId"] for k in nodes) == rg.outputs["memberClusters"]
    assert all(alarms[k].inputs["metricName"] == "DatabaseMemoryUsagePercentage" for k in nodes)

    # 4xx spikes: ALB + targets over all requests, judged only with enough traffic to mean something.
    rate4 = alarms["alb-4xx-rate"].inputs
    assert rate4["threshold"] == record.config.observability.alb_4xx_rate_percent
    q4 = {q["id"]: q for q in rate4["metricQueries"]}
    assert {q4[i]["metric"]["metricName"] for i in ("elb4xx", "target4xx", "requests")} == {
        "HTTPCode_ELB_4XX_Count",
        "HTTPCode_Target_4XX_Count",
        "RequestCount",
    }
    assert all(q4[i]["metric"]["dimensions"] == {"LoadBalancer": alb_suffix} for i in ("elb4xx", "target4xx"))
    assert alb_suffix.startswith("app/") and not alb_suffix.startswith("arn:")
    assert f">= {MIN_REQUESTS_FOR_4XX_RATE}" in q4["rate"]["expression"]
    assert [q["id"] for q in rate4["metricQueries"] if q["returnData"]] == ["rate"]
    assert {q["metric"]["metricName"] for q in rate["metricQueries"] if "metric" in q} == {
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
        "RequestCount",
    }


def _evaluation_range_problem(alarm: dict[str, Any]) -> str | None:
    """What PutMetricAlarm would refuse in an alarm's window (Period, EvaluationPeriods, DatapointsToAlarm docs):
    a period of 10, 20, 30 or a multiple of 60; Period x EvaluationPeriods at most 7 days, at most 1 day for a
    period under an hour; M of N with M <= N."""
    queries = alarm.get("metricQueries") or []
    periods = [q["metric"]["period"] for q in queries if q.get("metric")] or [alarm.get("period")]
    n = alarm["evaluationPeriods"]
    if not 1 <= alarm.get("datapointsToAlarm", n) <= n:
        return f"datapointsToAlarm {alarm.get('datapointsToAlarm')} outside 1..{n}"
    for period in periods:
        # Recorded inputs are JSON numbers (300.0): judge the value, not the type.
        if not isinstance(period, int | float) or not (period in (10, 20, 30) or (period > 0 and period % 60 == 0)):
            return f"period {period!r}"
        limit = 86400 if period < 3600 else 7 * 86400
        if period * n > limit:
            return f"period {period} x {n} evaluation periods > {limit} s"
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_every_alarm_window_is_one_cloudwatch_accepts(records: dict[str, Record], stack: str) -> None:
    # Offline mocks accept any window; PutMetricAlarm refuses these, so the first real `pulumi up` would fail.
    alarms = records[stack].of_type(ALARM)
    assert len(alarms) >= 10
    assert {a.name: p for a in alarms if (p := _evaluation_range_problem(a.inputs))} == {}
    # The check itself bites: a daily alarm looking back 8 days, a 5-minute one looking back 2 days, M > N.
    assert _evaluation_range_problem({"period": 86400, "evaluationPeriods": 8})
    assert _evaluation_range_problem({"metricQueries": [{"metric": {"period": 300}}], "evaluationPeriods": 576})
    assert _evaluation_range_problem({"period": 60, "evaluationPeriods": 3, "datapointsToAlarm": 4})
    assert _evaluation_range_problem({"period": 45, "evaluationPeriods": 1})


@pytest.mark.parametrize("stack", STACKS)
def test_monthly_budget_alerts_at_80_and_100(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    (budget,) = under(record, _obs(record), "aws:budgets/budget:Budget")
    assert budget.inputs["timeUnit"] == "MONTHLY" and budget.inputs["budgetType"] == "COST"
    assert float(budget.inputs["limitAmount"]) == record.config.observability.monthly_budget_usd
    assert budget.inputs["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:tier${record.config.tier}"]}]
    (topic,) = [
        t.outputs["arn"] for t in under(record, _obs(record), "aws:sns/topic:Topic") if "region" not in t.inputs
    ]
    seen = {(n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"]}
    assert seen == {("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 80), ("FORECASTED", 100)}
    for n in budget.inputs["notifications"]:
        assert n["subscriberSnsTopicArns"] == [topic]
        assert n["subscriberEmailAddresses"] == record.config.observability.alarm_emails


def test_budget_differs_by_tier(records: dict[str, Record]) -> None:
    limits = {
        s: float(under(records[s], _obs(records[s]), "aws:budgets/budget:Budget")[0].inputs["limitAmount"])
        for s in STACKS
    }
    assert limits["dev"] < limits["staging"] < limits["prod"]


def test_bad_alarm_email_is_refused() -> None:
    from stacks.config import ConfigError
    from stacks.engine.offline import run_stack

    with pytest.raises(ConfigError, match="not-an-email"):
        run_stack("dev", overrides={"visionrag:observability": {"alarmEmails": ["not-an-email"]}})


def test_alarm_and_budget_components_refuse_bad_args() -> None:
    from infra.alarms import Alarms, AlarmsArgs
    from infra.budget import CostBudget, CostBudgetArgs

    alarms = AlarmsArgs(
        name_prefix="visionrag-dev",
        topic_arn="arn:aws:sns:us-east-1:123456789012:t",
        alb_arn_suffix="app/x/1",
        target_group_arn_suffixes={"api": "targetgroup/api/1"},
        alb_5xx_rate_percent=5,
        alb_4xx_rate_percent=20,
        cache_member_clusters=["c-001"],
        cache_memory_percent=80,
    )
    alarm_cases: list[tuple[dict[str, Any], str]] = [
        ({"alb_5xx_rate_percent": 0}, "alb_5xx_rate_percent"),
        ({"alb_4xx_rate_percent": 101}, "alb_4xx_rate_percent"),
        ({"cache_memory_percent": 120}, "cache_memory_percent"),
        ({"target_group_arn_suffixes": {}}, "target_group_arn_suffixes"),
    ]
    for changes, field in alarm_cases:
        with pytest.raises(ValueError, match=field):
            Alarms("alarms", dataclasses.replace(alarms, **changes))

    budget = CostBudgetArgs(
        budget_name="b", monthly_limit_usd=100, cost_tag=("tier", "dev"), topic_arn="arn:aws:sns:us-east-1:1:t"
    )
    budget_cases: list[tuple[dict[str, Any], str]] = [
        ({"monthly_limit_usd": 0}, "monthly_limit_usd"),
        ({"emails": [f"a{i}@example.com" for i in range(11)]}, "emails"),
        ({"cost_tag": ("tier", "")}, "cost_tag"),
    ]
    for changes, field in budget_cases:
        with pytest.raises(ValueError, match=field):
            CostBudget("budget", dataclasses.replace(budget, **changes))
