"""Monthly cost estimate of a plan from the versioned price table in ``policies/prices/``.

Prices are on-demand list prices for the resource's region (its ``region`` input, else its provider's, else the
stack's). Usage-priced services we cannot size from the program (S3 storage, requests, data transfer, AMP) are
listed under ``notPriced`` rather than counted as $0. An instance or node type missing from the table is an
error: a guardrail that prices an unknown GPU at $0 would wave through the most expensive mistake.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pulumi_policy.proxy import UnknownValueError, _is_unknown

PRICE_TABLE = Path(__file__).resolve().parent / "prices" / "aws-2026-11.json"
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]i?)?\s*$")
_TO_GIB = {
    None: 1 / 2**30,
    "Ki": 1 / 2**20,
    "Mi": 1 / 2**10,
    "Gi": 1.0,
    "Ti": 2**10,
    "Pi": 2**20,
    "Ei": 2**30,
    "K": 1e3 / 2**30,
    "M": 1e6 / 2**30,
    "G": 1e9 / 2**30,
    "T": 1e12 / 2**30,
    "P": 1e15 / 2**30,
    "E": 1e18 / 2**30,
}


class PricingError(ValueError):
    """A resource the estimator must price but cannot (unknown instance/node type, region, quantity)."""


class UnpricedRegion(PricingError):
    """The stack's region has no prices in the table: the estimate is skipped with a notice, not failed (an
    unknown region is not a wrong value; the AWS value checks and the provider own region validity)."""


@dataclass(frozen=True)
class Priced:
    """One resource as the estimator sees it: plain inputs, and the region it is created in."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    region: str | None = None
    dependencies: tuple[str, ...] = ()


@dataclass
class Estimate:
    currency: str
    region: str
    price_table_date: str
    price_table_version: str
    items: list[dict[str, Any]] = field(default_factory=list)
    not_priced: dict[str, int] = field(default_factory=dict)
    gpu_max_nodes: int = 0
    gpu_monthly_at_max: float = 0.0

    @property
    def monthly_total(self) -> float:
        return round(sum(i["monthly"] for i in self.items), 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "region": self.region,
            "priceTableDate": self.price_table_date,
            "priceTableVersion": self.price_table_version,
            "monthlyTotal": self.monthly_total,
            "items": self.items,
            "notPriced": dict(sorted(self.not_priced.items())),
            "gpu": {"maxNodes": self.gpu_max_nodes, "monthlyAtMax": round(self.gpu_monthly_at_max, 2)},
        }


@lru_cache(maxsize=4)
def load_price_table(path: str | Path = PRICE_TABLE) -> dict[str, Any]:
    table = json.loads(Path(path).read_text())
    for key in ("version", "priceTableDate", "regions", "hoursPerMonth", "defaultRegion", "assumptions"):
        if key not in table:
            raise PricingError(f"price table {path} lacks {key!r}")
    return table


def region_prices(table: Mapping[str, Any], region: str) -> dict[str, Any]:
    regions = table["regions"]
    if region not in regions:
        raise UnpricedRegion(
            f"region {region!r} is not in price table {table['version']}; priced regions: {sorted(regions)}"
        )
    entry = dict(regions[region])
    parent = entry.pop("inherits", None)
    return {**region_prices(table, parent), **entry} if parent else entry


def gib(quantity: Any) -> float:
    """Kubernetes quantity ('200Gi', '1Ti', '500M') or a number of GiB."""
    if isinstance(quantity, int | float) and not isinstance(quantity, bool):
        return float(quantity)
    m = _QUANTITY.match(str(quantity))
    if not m:
        raise PricingError(f"storage quantity {quantity!r} is not a Kubernetes quantity like '100Gi'")
    return float(m.group(1)) * _TO_GIB[m.group(2)]


def _v(inputs: Any, *path: str | int) -> Any:
    cur = inputs
    for key in path:
        if isinstance(key, int):
            if not isinstance(cur, list) or key >= len(cur):
                return None
            cur = cur[key]
        elif isinstance(cur, Mapping):
            cur = cur.get(key)
        else:
            return None
        if _is_unknown(cur):
            raise UnknownValueError(cur, [str(p) for p in path])
    return cur


def _num(value: Any, default: float | None = None) -> float | None:
    if value is None or isinstance(value, bool):
        return default
    return float(value)


class _Estimator:
    def __init__(self, resources: list[Priced], default_region: str, table: Mapping[str, Any]) -> None:
        self.resources = resources
        self.by_urn = {r.urn: r for r in resources}
        self.default_region = default_region
        self.table = table
        self.hours = float(table["hoursPerMonth"])
        self.assume = table["assumptions"]
        self.out = Estimate(
            currency=table.get("currency", "USD"),
            region=default_region,
            price_table_date=table["priceTableDate"],
            price_table_version=table["version"],
        )
        self.storage_classes = {
            str(_v(r.inputs, "metadata", "name") or r.name): str(_v(r.inputs, "parameters", "type") or "gp3")
            for r in resources
            if r.type == "kubernetes:storage.k8s.io/v1:StorageClass"
        }

    def prices(self, r: Priced) -> dict[str, Any]:
        return region_prices(self.table, r.region or self.default_region)

    def add(self, r: Priced, monthly: float, basis: str, **extra: Any) -> None:
        self.out.items.append(
            {"urn": r.urn, "type": r.type, "name": r.name, "monthly": round(monthly, 2), "basis": basis, **extra}
        )

    def ec2_hourly(self, r: Priced, instance_type: str) -> float:
        table = self.prices(r)["ec2Hourly"]
        if instance_type not in table:
            raise PricingError(
                f"{r.type} {r.name}: instance type {instance_type!r} has no price in table "
                f"{self.table['version']} for {r.region or self.default_region}; add it (an unknown type is never "
                "priced at $0)"
            )
        return float(table[instance_type])

    def ebs(self, r: Priced, size_gib: float, volume_type: str) -> float:
        table = self.prices(r)["ebsPerGbMonth"]
        if volume_type not in table:
            raise PricingError(f"{r.type} {r.name}: EBS volume type {volume_type!r} is not priced ({sorted(table)})")
        return size_gib * float(table[volume_type])

    def launch_template(self, r: Priced) -> Priced | None:
        ref = _v(r.inputs, "launchTemplate", "id") or _v(r.inputs, "launchTemplate", "name")
        for dep in r.dependencies:
            d = self.by_urn.get(dep)
            if d is not None and d.type == "aws:ec2/launchTemplate:LaunchTemplate":
                return d
        for d in self.resources:
            if d.type == "aws:ec2/launchTemplate:LaunchTemplate" and ref in (d.name, d.inputs.get("name")):
                return d
        return None

    # ---- per type ------------------------------------------------------------------------------------------
    def run(self) -> Estimate:
        handlers = {
            "aws:eks/cluster:Cluster": self.eks,
            "aws:eks/nodeGroup:NodeGroup": self.node_group,
            "aws:ec2/natGateway:NatGateway": self.nat,
            "aws:lb/loadBalancer:LoadBalancer": self.load_balancer,
            "aws:alb/loadBalancer:LoadBalancer": self.load_balancer,
            "aws:kms/key:Key": self.kms,
            "aws:kms/replicaKey:ReplicaKey": self.kms,
            "aws:secretsmanager/secret:Secret": self.secret,
            "aws:elasticache/replicationGroup:ReplicationGroup": self.cache_group,
            "aws:elasticache/cluster:Cluster": self.cache_cluster,
            "aws:ec2/vpcEndpoint:VpcEndpoint": self.endpoint,
            "aws:cloudwatch/logGroup:LogGroup": self.log_group,
            "aws:cloudwatch/metricAlarm:MetricAlarm": self.alarm,
            "aws:wafv2/webAcl:WebAcl": self.waf,
            "aws:cloudfront/distribution:Distribution": self.distribution,
            "aws:ec2/eip:Eip": self.eip,
            "aws:ebs/volume:Volume": self.volume,
            "aws:ec2/instance:Instance": self.instance,
            "kubernetes:core/v1:PersistentVolumeClaim": self.pvc,
            "kubernetes:apps/v1:StatefulSet": self.statefulset,
        }
        usage_priced = (
            "aws:s3/bucket:Bucket",
            "aws:amp/workspace:Workspace",
            "aws:amp/scraper:Scraper",
            "aws:sns/topic:Topic",
            "aws:ecr/repository:Repository",
            "aws:s3/bucketV2:BucketV2",
        )
        for r in self.resources:
            handler = handlers.get(r.type)
            if handler is not None:
                handler(r)
            elif r.type in usage_priced:
                self.out.not_priced[r.type] = self.out.not_priced.get(r.type, 0) + 1
        return self.out

    def eks(self, r: Priced) -> None:
        hourly = float(self.prices(r)["eksControlPlaneHourly"])
        self.add(r, hourly * self.hours, f"control plane {hourly}/h x {self.hours:g} h")

    def node_group(self, r: Priced) -> None:
        lt = self.launch_template(r)
        types = [str(t) for t in (_v(r.inputs, "instanceTypes") or [])]
        if not types and lt is not None and _v(lt.inputs, "instanceType"):
            types = [str(_v(lt.inputs, "instanceType"))]
        if not types:
            raise PricingError(f"{r.type} {r.name}: no instance type in instanceTypes or its launch template")
        instance = types[0]
        hourly = self.ec2_hourly(r, instance)
        spot = _v(r.inputs, "capacityType") == "SPOT"
        if spot:
            # Spot draws from any listed type (capacity-optimized, not cheapest-first): price the dearest at the
            # table's assumed Spot/on-demand ratio (an estimate; Spot prices move with spare capacity).
            instance = max(types, key=lambda t: self.ec2_hourly(r, t))
            ratio = float(self.assume["spotPriceRatio"])
            hourly = round(self.ec2_hourly(r, instance) * ratio, 5)
            price = f"Spot, estimated at {ratio:.0%} of on-demand {self.ec2_hourly(r, instance)}/h = {hourly}/h"
        else:
            price = f"{hourly}/h"
        desired = _num(_v(r.inputs, "scalingConfig", "desiredSize"))
        minimum = _num(_v(r.inputs, "scalingConfig", "minSize"), 0.0) or 0.0
        maximum = _num(_v(r.inputs, "scalingConfig", "maxSize"), minimum) or minimum
        count = desired if desired is not None else minimum
        disk, vtype = float(self.assume["nodeRootVolumeGib"]), "gp3"
        if lt is not None:
            for m in _v(lt.inputs, "blockDeviceMappings") or []:
                size = _v(m, "ebs", "volumeSize")
                if size is not None:
                    disk, vtype = float(size), str(_v(m, "ebs", "volumeType") or "gp2")
                    break
        elif _v(r.inputs, "diskSize") is not None:
            disk = float(_v(r.inputs, "diskSize"))
        per_node = hourly * self.hours + self.ebs(r, disk, vtype)
        gpus = self.table.get("gpusPerInstance", {}).get(instance, 0)
        if gpus:
            self.out.gpu_max_nodes += int(maximum)
            self.out.gpu_monthly_at_max += per_node * maximum
        self.add(
            r,
            per_node * count,
            f"{count:g} x {instance} ({price}) + {disk:g} GiB {vtype} each; "
            f"{'desiredSize' if desired is not None else 'minSize'} (max {maximum:g} = {per_node * maximum:.2f})",
            monthlyAtMax=round(per_node * maximum, 2),
            gpusPerNode=gpus,
        )

    def nat(self, r: Priced) -> None:
        hourly = float(self.prices(r)["natGatewayHourly"])
        self.add(r, hourly * self.hours, f"NAT gateway {hourly}/h (data processing not included)")

    def load_balancer(self, r: Priced) -> None:
        p = self.prices(r)
        kind = _v(r.inputs, "loadBalancerType") or "application"
        if kind == "application":
            lcu = float(self.assume["albLcuPerHour"])
            monthly = (float(p["albHourly"]) + lcu * float(p["albLcuHourly"])) * self.hours
            self.add(r, monthly, f"ALB {p['albHourly']}/h + {lcu:g} LCU x {p['albLcuHourly']}/h")
        else:
            self.add(r, float(p["nlbHourly"]) * self.hours, f"{kind} load balancer {p['nlbHourly']}/h (no LCU)")

    def kms(self, r: Priced) -> None:
        monthly = float(self.prices(r)["kmsKeyMonthly"])
        self.add(r, monthly, f"customer-managed key {monthly}/month (requests not included)")

    def secret(self, r: Priced) -> None:
        each = float(self.prices(r)["secretMonthly"])
        copies = 1 + len(_v(r.inputs, "replicas") or [])
        self.add(r, each * copies, f"{copies} x secret {each}/month")

    def _cache_hourly(self, r: Priced, node_type: Any) -> float:
        table = self.prices(r)["elasticacheHourly"]
        if node_type not in table:
            raise PricingError(
                f"{r.type} {r.name}: node type {node_type!r} has no price in table {self.table['version']}"
            )
        hourly = float(table[node_type])
        if str(_v(r.inputs, "engine") or "redis").lower() == "valkey":
            hourly *= float(self.assume["valkeyNodeDiscount"])
        return hourly

    def cache_group(self, r: Priced) -> None:
        hourly = self._cache_hourly(r, _v(r.inputs, "nodeType"))
        shards = _num(_v(r.inputs, "numNodeGroups"))
        if shards is not None:
            nodes = shards * ((_num(_v(r.inputs, "replicasPerNodeGroup"), 0.0) or 0.0) + 1)
        else:
            nodes = _num(_v(r.inputs, "numCacheClusters"), 1.0) or 1.0
        self.add(r, nodes * hourly * self.hours, f"{nodes:g} x {_v(r.inputs, 'nodeType')} ({hourly:.4f}/h)")

    def cache_cluster(self, r: Priced) -> None:
        if _v(r.inputs, "replicationGroupId"):
            return  # a member of a replication group, priced there
        hourly = self._cache_hourly(r, _v(r.inputs, "nodeType"))
        nodes = _num(_v(r.inputs, "numCacheNodes"), 1.0) or 1.0
        self.add(r, nodes * hourly * self.hours, f"{nodes:g} x {_v(r.inputs, 'nodeType')} ({hourly:.4f}/h)")

    def endpoint(self, r: Priced) -> None:
        if (_v(r.inputs, "vpcEndpointType") or "Gateway") != "Interface":
            return  # gateway endpoints (S3, DynamoDB) are free
        azs = max(1, len(_v(r.inputs, "subnetIds") or []))
        hourly = float(self.prices(r)["interfaceEndpointHourlyPerAz"])
        self.add(r, azs * hourly * self.hours, f"interface endpoint in {azs} AZ x {hourly}/h (data not included)")

    def log_group(self, r: Priced) -> None:
        p = self.prices(r)
        name = str(_v(r.inputs, "name") or r.name)
        ingest_table = self.assume["logIngestGbPerMonth"]
        ingest = float(ingest_table["default"])
        for pattern, gb in ingest_table.items():
            if pattern != "default" and pattern in name:
                ingest = float(gb)
        retention = _num(_v(r.inputs, "retentionInDays"))
        months = (retention / 30.0) if retention else float(self.assume["logUnboundedRetentionMonths"])
        stored = ingest * months * float(self.assume["logStoredRatio"])
        monthly = ingest * float(p["logsIngestPerGb"]) + stored * float(p["logsStoragePerGbMonth"])
        self.add(
            r,
            monthly,
            f"assumed {ingest:g} GB/month ingested, ~{stored:.1f} GB stored "
            f"({'retention ' + format(retention, 'g') + ' d' if retention else 'no retention'})",
        )

    def alarm(self, r: Priced) -> None:
        monthly = float(self.prices(r)["alarmMonthly"])
        self.add(r, monthly, f"standard alarm {monthly}/month")

    def waf(self, r: Priced) -> None:
        p = self.prices(r)
        rules = _v(r.inputs, "rules")
        if rules is None and isinstance(_v(r.inputs, "ruleJson"), str):
            rules = json.loads(_v(r.inputs, "ruleJson"))
        count = len(rules or [])
        millions = float(self.assume["wafRequestsMillionsPerMonth"])
        monthly = (
            float(p["wafWebAclMonthly"])
            + count * float(p["wafRuleMonthly"])
            + millions * float(p["wafPerMillionRequests"])
        )
        self.add(r, monthly, f"web ACL + {count} rules + assumed {millions:g}M requests")

    def distribution(self, r: Priced) -> None:
        # CloudFront bills usage only: data out to viewers + HTTPS requests, at assumed volumes (the always-free
        # tier of 1 TB / 10M requests is ignored: an estimate should err high).
        p = self.prices(r)
        gb = float(self.assume["cloudfrontGbPerMonth"])
        millions = float(self.assume["cloudfrontRequestsMillionsPerMonth"])
        monthly = gb * float(p["cloudfrontPerGb"]) + millions * float(p["cloudfrontPerMillionHttpsRequests"])
        self.add(r, monthly, f"assumed {gb:g} GB out + {millions:g}M HTTPS requests")

    def eip(self, r: Priced) -> None:
        hourly = float(self.prices(r)["publicIpv4Hourly"])
        self.add(r, hourly * self.hours, f"public IPv4 {hourly}/h")

    def volume(self, r: Priced) -> None:
        size = _num(_v(r.inputs, "size"), 0.0) or 0.0
        vtype = str(_v(r.inputs, "type") or "gp3")
        self.add(r, self.ebs(r, size, vtype), f"{size:g} GiB {vtype}")

    def instance(self, r: Priced) -> None:
        itype = str(_v(r.inputs, "instanceType"))
        hourly = self.ec2_hourly(r, itype)
        self.add(r, hourly * self.hours, f"{itype} {hourly}/h")

    def _claim(self, r: Priced, spec: Any, copies: float, label: str) -> None:
        size = gib(_v(spec, "resources", "requests", "storage") or 0)
        sc = _v(spec, "storageClassName")
        vtype = self.storage_classes.get(str(sc), "gp3") if sc else "gp3"
        monthly = self.ebs(r, size * copies, vtype)
        self.add(r, monthly, f"{label}: {copies:g} x {size:g} GiB {vtype} (EBS via PVC)")

    def pvc(self, r: Priced) -> None:
        self._claim(r, _v(r.inputs, "spec") or {}, 1.0, "PersistentVolumeClaim")

    def statefulset(self, r: Priced) -> None:
        replicas = _num(_v(r.inputs, "spec", "replicas"), 1.0) or 1.0
        for tpl in _v(r.inputs, "spec", "volumeClaimTemplates") or []:
            name = _v(tpl, "metadata", "name")
            self._claim(r, _v(tpl, "spec") or {}, replicas, f"volumeClaimTemplate {name}")


def estimate(
    resources: Iterable[Priced], *, default_region: str | None = None, table: Mapping[str, Any] | None = None
) -> Estimate:
    table = table or load_price_table()
    region = default_region or table["defaultRegion"]
    region_prices(table, region)  # fail early, naming the region
    return _Estimator(list(resources), region, table).run()


def plan_resources(plan: Mapping[str, Any]) -> tuple[list[Priced], str | None]:
    """The plan's resources with their regions resolved (own input → provider's input → stack config)."""
    resources = list(plan.get("resources", []))
    by_urn = {r["urn"]: r for r in resources}
    config = plan.get("config") or {}
    default = config.get("region") or config.get("aws:region")
    out = []
    for r in resources:
        inputs = r.get("inputs") or {}
        region = inputs.get("region") if isinstance(inputs.get("region"), str) else None
        ref = r.get("provider") or ""
        if region is None and ref and r.get("type", "").startswith("aws:"):
            # Provider references are "<urn>::<id>" in the engine; the plan may carry either form.
            provider = by_urn.get(ref) or by_urn.get(ref.rsplit("::", 1)[0])
            if provider is not None:
                region = (provider.get("inputs") or {}).get("region")
        out.append(
            Priced(
                urn=r["urn"],
                type=r["type"],
                name=r.get("name", ""),
                inputs=inputs,
                region=region if r.get("type", "").startswith("aws:") else None,
                dependencies=tuple(r.get("dependencies") or ()),
            )
        )
    return out, default


def estimate_plan(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The contract seam: monthly USD for a plan dict (see contracts: policies.cost_estimator.estimate_plan)."""
    resources, region = plan_resources(plan)
    try:
        return estimate(resources, default_region=region).to_dict()
    except UnpricedRegion as e:
        table = load_price_table()
        return {
            "currency": table.get("currency", "USD"),
            "region": region,
            "priceTableDate": table["priceTableDate"],
            "priceTableVersion": table["version"],
            "monthlyTotal": None,
            "items": [],
            "notPriced": {},
            "gpu": {"maxNodes": 0, "monthlyAtMax": 0.0},
            "notice": f"unpriced (advisory): {e}",
        }
