"""The cost estimator: prices from the versioned table, per resource, per region; unknown types are errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from policies.cost_estimator import PricingError, estimate_plan, gib, load_price_table, region_prices
from tests.policies.policy_plans import PlanBuilder, find

TABLE = load_price_table()
HOURS = TABLE["hoursPerMonth"]
USE1 = region_prices(TABLE, "us-east-1")


def _items(plan) -> dict[str, dict]:
    return {i["name"]: i for i in estimate_plan(plan)["items"]}


def test_price_table_is_versioned_and_dated() -> None:
    cost = estimate_plan({"resources": []})
    assert cost["currency"] == "USD"
    assert cost["priceTableVersion"] == TABLE["version"]
    assert cost["priceTableDate"] == TABLE["priceTableDate"] == "2026-11-25"
    assert cost["region"] == "us-east-1"
    assert cost["monthlyTotal"] == 0


def test_node_groups_priced_at_desired_with_max_reported(plan) -> None:
    items = _items(plan)
    gpu = items["visionrag-prod-gpu"]
    per_node = USE1["ec2Hourly"]["g5.2xlarge"] * HOURS + 100 * USE1["ebsPerGbMonth"]["gp3"]
    assert gpu["monthly"] == pytest.approx(per_node, abs=0.01)
    assert gpu["monthlyAtMax"] == pytest.approx(per_node * 4, abs=0.01)
    assert gpu["gpusPerNode"] == 1
    system = items["visionrag-prod-system"]
    assert system["monthly"] == pytest.approx(3 * (0.192 * HOURS + 100 * 0.08), abs=0.01)


def test_spot_node_group_priced_at_the_spot_ratio_of_its_dearest_type(plan) -> None:
    ng = find(plan, "aws:eks/nodeGroup:NodeGroup", "-system")["inputs"]
    on_demand = _items(plan)["visionrag-prod-system"]["monthly"]
    # Spot draws from any listed type: priced at the dearer one (m6i.xlarge $0.192/h), whatever the order.
    ng.update(capacityType="SPOT", instanceTypes=["m6a.xlarge", "m6i.xlarge"])
    item = _items(plan)["visionrag-prod-system"]
    ratio = TABLE["assumptions"]["spotPriceRatio"]
    assert 0 < ratio < 1
    assert item["monthly"] == pytest.approx(3 * (0.192 * ratio * HOURS + 100 * 0.08), abs=0.02)
    assert item["monthly"] < on_demand
    assert "Spot, estimated at 40% of on-demand 0.192/h" in item["basis"]
    assert "m6i.xlarge" in item["basis"]
    # On-demand groups use the first listed type (EKS launches on-demand types in priority order).
    ng.update(capacityType="ON_DEMAND")
    assert _items(plan)["visionrag-prod-system"]["monthly"] == pytest.approx(
        3 * (0.1728 * HOURS + 100 * 0.08), abs=0.02
    )


def test_spot_node_group_with_an_unpriced_type_is_an_error(plan) -> None:
    ng = find(plan, "aws:eks/nodeGroup:NodeGroup", "-system")["inputs"]
    ng.update(capacityType="SPOT", instanceTypes=["m6i.xlarge", "z9.huge"])
    with pytest.raises(PricingError, match=r"z9\.huge"):
        estimate_plan(plan)


def test_min_size_used_when_no_desired(plan) -> None:
    ng = find(plan, "aws:eks/nodeGroup:NodeGroup", "-gpu")
    ng["inputs"]["scalingConfig"] = {"minSize": 0.0, "maxSize": 2.0}
    assert _items(plan)["visionrag-prod-gpu"]["monthly"] == 0


def test_fixed_price_items(plan) -> None:
    items = _items(plan)
    assert items["visionrag-prod"]["monthly"] == pytest.approx(0.10 * HOURS)  # EKS control plane
    assert items["visionrag-prod-nat-a"]["monthly"] == pytest.approx(0.045 * HOURS)
    assert items["visionrag-prod-data"]["monthly"] == 1.0  # KMS key
    assert items["visionrag-prod-jwt"]["monthly"] == 0.4  # secret
    assert items["visionrag-prod-sts"]["monthly"] == pytest.approx(3 * 0.01 * HOURS)  # endpoint in 3 AZs
    assert "visionrag-prod-s3" not in items  # gateway endpoints are free
    assert items["visionrag-prod-alb"]["monthly"] == pytest.approx((0.0225 + 0.008) * HOURS, abs=0.01)
    # valkey nodes are 20% cheaper than redis OSS
    assert items["visionrag-prod-cache"]["monthly"] == pytest.approx(2 * 0.219 * 0.8 * HOURS, abs=0.01)


def test_pvc_and_statefulset_claims(plan) -> None:
    items = _items(plan)
    assert items["qdrant"]["monthly"] == pytest.approx(3 * 200 * 0.08)
    b = PlanBuilder()
    b.add(
        "kubernetes:core/v1:PersistentVolumeClaim", "cache", {"spec": {"resources": {"requests": {"storage": "1Ti"}}}}
    )
    assert _items(b.plan())["cache"]["monthly"] == pytest.approx(1024 * 0.08)


def test_log_groups_use_retention(plan) -> None:
    items = _items(plan)
    flow = items["visionrag-prod-flow-logs"]
    assert "retention 365 d" in flow["basis"] and flow["monthly"] > 0


def test_usage_priced_services_are_listed_not_zeroed(plan) -> None:
    cost = estimate_plan(plan)
    assert cost["notPriced"]["aws:s3/bucket:Bucket"] == 8
    assert all(i["type"] != "aws:s3/bucket:Bucket" for i in cost["items"])


def test_unknown_instance_type_is_an_error_not_zero(plan) -> None:
    find(plan, "aws:eks/nodeGroup:NodeGroup", "-system")["inputs"]["instanceTypes"] = ["z9.huge"]
    with pytest.raises(PricingError, match=re.escape("'z9.huge' has no price")):
        estimate_plan(plan)


def test_unknown_cache_node_type_is_an_error(plan) -> None:
    find(plan, "aws:elasticache/replicationGroup:ReplicationGroup")["inputs"]["nodeType"] = "cache.x9.large"
    with pytest.raises(ValueError, match=re.escape("cache.x9.large")):
        estimate_plan(plan)


def test_region_from_resource_then_provider_then_stack() -> None:
    b = PlanBuilder()
    west = b.add("pulumi:providers:aws", "west", {"region": "us-west-2"})
    b.add("aws:kms/key:Key", "by-provider", {}, provider=f"{west}::abc")
    b.add("aws:kms/key:Key", "by-input", {"region": "us-west-2"})
    b.add("aws:kms/key:Key", "by-stack", {})
    plan = b.plan()
    plan["config"]["region"] = "eu-central-1"
    unpriced = estimate_plan(plan)  # the stack-level region is unpriced: advisory, not an error
    assert unpriced["monthlyTotal"] is None and unpriced["items"] == []
    assert unpriced["notice"].startswith("unpriced (advisory): region 'eu-central-1' is not in price table")
    plan["config"]["region"] = "us-east-1"
    assert len(estimate_plan(plan)["items"]) == 3


def test_unpriced_region_is_advisory_for_the_cost_policies(plan) -> None:
    from policies.evaluator import evaluate_plan

    config: dict[str, dict[str, Any]] = {
        "cost-monthly-budget": {"monthlyBudgetUsd": 1},
        "cost-gpu-ceiling": {"maxGpuNodes": 9},
    }
    priced = [v.policy for v in evaluate_plan(plan, config)]
    assert "cost-monthly-budget" in priced  # over a $1 budget where it can be priced
    config["cost-monthly-budget"]["region"] = "ap-south-2"
    assert not [v for v in evaluate_plan(plan, config) if v.policy.startswith("cost-")]


def test_replica_region_inherits_prices() -> None:
    assert region_prices(TABLE, "us-west-2")["ec2Hourly"] == USE1["ec2Hourly"]


@pytest.mark.parametrize(("q", "expected"), [("200Gi", 200), ("1Ti", 1024), ("512Mi", 0.5), (50, 50)])
def test_quantities(q, expected) -> None:
    assert gib(q) == pytest.approx(expected)


def test_bad_quantity() -> None:
    with pytest.raises(PricingError, match="not a Kubernetes quantity"):
        gib("lots")


def test_every_gpu_family_the_pack_allows_is_priced() -> None:
    from policies.rules.cluster import GPU_FAMILIES_DEFAULT

    priced = {t.split(".")[0] for t in USE1["ec2Hourly"]}
    assert set(GPU_FAMILIES_DEFAULT) <= priced
    assert all(t in TABLE["gpusPerInstance"] for t in USE1["ec2Hourly"] if t.split(".")[0] in GPU_FAMILIES_DEFAULT)
