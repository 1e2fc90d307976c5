"""Cost guardrails: the stack's estimated monthly cost within its budget, GPU capacity within its ceiling.

The policy prices the resources it is handed (not a number computed elsewhere), so a saved plan that is edited
is priced again, and under the CLI the pack prices exactly what the engine is about to create.
"""

from __future__ import annotations

from pulumi_policy import Policy, PolicyResource, Severity, StackValidationArgs

from policies.cost_estimator import Estimate, Priced, PricingError, UnpricedRegion, estimate
from policies.rules._base import Report, as_list, config_schema, get, knob, number, of_type, peek, raw, stack_policy
from policies.rules.cluster import LAUNCH_TEMPLATE, NODE_GROUP, is_gpu_instance


def priced(resources: list[PolicyResource]) -> list[Priced]:
    out = []
    for r in resources:
        inputs = raw(r.props)
        region = inputs.get("region") if isinstance(inputs.get("region"), str) else None
        if region is None and r.provider is not None and r.resource_type.startswith("aws:"):
            provider_region = peek(r.provider.props, "region")
            region = provider_region if isinstance(provider_region, str) else None
        out.append(
            Priced(
                urn=r.urn,
                type=r.resource_type,
                name=r.name,
                inputs=inputs,
                region=region if r.resource_type.startswith("aws:") else None,
                dependencies=tuple(d.urn for d in r.dependencies),
            )
        )
    return out


def _estimate(args: StackValidationArgs) -> Estimate:
    return estimate(priced(list(args.resources)), default_region=knob(args, "region", None))


def _budget(args: StackValidationArgs, report: Report) -> None:
    budget = float(knob(args, "monthlyBudgetUsd", 0))
    try:
        est = _estimate(args)
    except UnpricedRegion:
        return  # advisory: the preview's cost section says "unpriced"; nothing here is a wrong value
    except PricingError as e:
        report(f"cannot price the stack, so the budget cannot be vouched for: {e}")
        return
    if est.monthly_total > budget:
        top = sorted(est.items, key=lambda i: i["monthly"], reverse=True)[:5]
        detail = "; ".join(f"{i['name']} ${i['monthly']:,.2f}" for i in top)
        report(
            f"estimated ${est.monthly_total:,.2f}/month exceeds the budget ${budget:,.2f} "
            f"(price table {est.price_table_version}); largest: {detail}"
        )


def _gpu_node_groups(resources: list[PolicyResource]) -> list[tuple[PolicyResource, float]]:
    templates = {t.urn: t for t in of_type(resources, LAUNCH_TEMPLATE)}
    out = []
    for ng in of_type(resources, NODE_GROUP):
        types = [str(t) for t in as_list(get(ng.props, "instanceTypes"))]
        types += [
            str(get(templates[d.urn].props, "instanceType"))
            for d in ng.dependencies
            if d.urn in templates and get(templates[d.urn].props, "instanceType")
        ]
        ami = str(get(ng.props, "amiType") or "")
        if any(is_gpu_instance(t) for t in types) or "NVIDIA" in ami or "GPU" in ami:
            out.append((ng, number(get(ng.props, "scalingConfig", "maxSize")) or 0.0))
    return out


def _gpu_ceiling(args: StackValidationArgs, report: Report) -> None:
    resources = list(args.resources)
    ceiling = int(knob(args, "maxGpuNodes", 0))
    groups = _gpu_node_groups(resources)
    total = sum(m for _, m in groups)
    if total > ceiling:
        detail = ", ".join(f"{ng.name} max {m:g}" for ng, m in groups)
        report(
            f"GPU node groups can scale to {total:g} nodes ({detail}); this stack's ceiling is {ceiling}",
            groups[0][0].urn if len(groups) == 1 else None,
        )
    money = knob(args, "gpuMonthlyCeilingUsd", None)
    if money is not None and groups:
        # Price only the GPU node groups (and the launch templates their disks come from): an unpriceable CPU
        # group is the budget policy's finding, not this one's.
        subset = [ng for ng, _ in groups] + of_type(resources, LAUNCH_TEMPLATE)
        try:
            est = estimate(priced(subset), default_region=knob(args, "region", None))
        except UnpricedRegion:
            return  # advisory, as for the budget (maxGpuNodes above still holds)
        except PricingError as e:
            report(f"cannot price the GPU node groups: {e}")
            return
        at_max = sum(i.get("monthlyAtMax", 0.0) for i in est.items if i.get("gpusPerNode"))
        if at_max > float(money):
            report(f"GPU node groups at max size cost ${at_max:,.2f}/month; the ceiling is ${float(money):,.2f}")


POLICIES: list[Policy] = [
    stack_policy(
        name="cost-monthly-budget",
        description="The stack's estimated monthly cost (on-demand list prices from the versioned price table) "
        "stays within its budget; a resource that cannot be priced fails the check.",
        severity=Severity.HIGH,
        remediation="Shrink what costs most (see the cost table in `python -m stacks preview`), or raise "
        "monthlyBudgetUsd in policies/config/<stack>.json together with the AWS Budgets amount, with approval.",
        validate=_budget,
        schema=config_schema(
            {
                "monthlyBudgetUsd": {"type": "number", "exclusiveMinimum": 0},
                "region": {"type": "string", "description": "Region for resources whose provider names none."},
            },
            required=["monthlyBudgetUsd"],
        ),
        tags=["cost"],
    ),
    stack_policy(
        name="cost-gpu-ceiling",
        description="GPU node groups together cannot scale beyond the stack's GPU node ceiling (and, where set, "
        "their cost at max size stays under a monthly ceiling).",
        severity=Severity.HIGH,
        remediation="Lower cluster.gpuNodes.maxSize in the stack config, or raise maxGpuNodes in the pack config "
        "for this stack with approval.",
        validate=_gpu_ceiling,
        schema=config_schema(
            {
                "maxGpuNodes": {"type": "integer", "minimum": 0},
                "gpuMonthlyCeilingUsd": {"type": "number", "exclusiveMinimum": 0},
            },
            required=["maxGpuNodes"],
        ),
        tags=["cost", "gpu"],
    ),
]
