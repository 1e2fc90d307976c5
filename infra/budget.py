"""CostBudget: a monthly AWS Budgets cost budget for one stack, alerting at 80% and 100%, actual and forecast.

The budget counts the costs tagged `tier=<tier>` (every resource carries it), so several stacks can share one
account. AWS only filters on a tag once it is activated as a cost allocation tag (Billing console, or
`aws ce update-cost-allocation-tags-status`); docs/platform.md lists that one-time step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

THRESHOLDS_PERCENT = (80, 100)
NOTIFICATION_TYPES = ("ACTUAL", "FORECASTED")
_MAX_EMAILS = 10  # AWS Budgets: at most 10 e-mail subscribers per notification


@dataclass(frozen=True, kw_only=True)
class CostBudgetArgs:
    budget_name: str
    monthly_limit_usd: float
    cost_tag: tuple[str, str]  # (key, value) of the cost allocation tag the budget counts
    topic_arn: pulumi.Input[str]
    emails: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


class CostBudget(pulumi.ComponentResource):
    budget: aws.budgets.Budget

    def __init__(self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.monthly_limit_usd <= 0:
            raise ValueError(f"monthly_limit_usd: {args.monthly_limit_usd} must be > 0")
        if len(args.emails) > _MAX_EMAILS:
            raise ValueError(f"emails: {len(args.emails)} addresses; AWS Budgets allows at most {_MAX_EMAILS}")
        key, value = args.cost_tag
        if not key or not value:
            raise ValueError(f"cost_tag: {args.cost_tag!r} needs a key and a value")
        super().__init__("visionrag:infra:CostBudget", name, None, opts)

        self.budget = aws.budgets.Budget(
            f"{name}-monthly",
            name=args.budget_name,
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.monthly_limit_usd:.2f}",
            limit_unit="USD",
            cost_filters=[aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:{key}${value}"])],
            notifications=[
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    notification_type=kind,
                    threshold=threshold,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[args.topic_arn],
                    subscriber_email_addresses=list(args.emails) or None,
                )
                for kind in NOTIFICATION_TYPES
                for threshold in THRESHOLDS_PERCENT
            ],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"budget_name": self.budget.name})
