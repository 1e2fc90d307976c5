"""EKS node capacity: Spot node groups only where the stack allows them, and then drawn from several Spot pools.

Spot capacity can be reclaimed with two minutes' notice. A stack that serves users keeps its nodes on-demand; a
stack that allows Spot (dev: `allowSpot`) still needs at least two interchangeable instance types per group, so an
interrupted node can come back from another Spot pool (EKS builds the group's Auto Scaling group with a
capacity-optimized allocation across the listed types).
"""

from __future__ import annotations

from pulumi_policy import Policy, ResourceValidationArgs, Severity

from policies.rules._base import Report, as_list, config_schema, get, knob, resource_policy
from policies.rules.cluster import NODE_GROUP

SPOT_MIN_INSTANCE_TYPES = 2


def _capacity(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != NODE_GROUP:
        return
    # Unset means ON_DEMAND: the EKS API's default capacity type.
    capacity = get(args.props, "capacityType") or "ON_DEMAND"
    if capacity == "ON_DEMAND":
        return
    if capacity != "SPOT":
        report(f"capacityType is {capacity!r}: this pack allows ON_DEMAND, and SPOT where the stack allows it")
        return
    if not knob(args, "allowSpot", False):
        report(
            "capacityType is SPOT: Spot nodes can be reclaimed at two minutes' notice; this stack requires "
            "ON_DEMAND nodes"
        )
        return
    types = {str(t) for t in as_list(get(args.props, "instanceTypes"))}
    if len(types) < SPOT_MIN_INSTANCE_TYPES:
        report(
            f"capacityType is SPOT with instanceTypes {sorted(types)}: list at least {SPOT_MIN_INSTANCE_TYPES} "
            "interchangeable types so an interrupted node can be replaced from another Spot pool"
        )


POLICIES: list[Policy] = [
    resource_policy(
        name="eks-node-group-capacity",
        description="EKS node groups run on-demand capacity; Spot only where the stack allows it (dev), and then "
        "with at least two interchangeable instance types.",
        severity=Severity.HIGH,
        remediation="Set capacity_type='ON_DEMAND' (the cluster.<pool>.capacityType config key); where Spot is "
        "allowed, list two or more instance types of the same vCPU, memory and architecture.",
        validate=_capacity,
        schema=config_schema({"allowSpot": {"type": "boolean", "default": False}}),
        tags=["eks", "availability", "cost"],
    ),
]
