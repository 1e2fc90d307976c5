"""Human renderings of the plan JSON: a terminal table and a Markdown PR comment.

Both read only the plan dict (stacks/engine/plan.py), so what a reviewer sees is exactly what the JSON says.
Sections, in order: resources grouped by top-level component, policy violations, cost, Kubernetes manifest
validation, AWS value checks, then the verdict that decides the exit status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STACK_GROUP = "(stack)"


@dataclass
class Group:
    name: str
    type: str
    urn: str | None
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def group_resources(resources: list[Mapping[str, Any]]) -> list[Group]:
    """Every resource under its outermost component (the stack's direct child); custom resources only counted."""
    by_urn = {r["urn"]: r for r in resources}
    groups: dict[str, Group] = {}
    for r in resources:
        top = r
        while top["parent"] in by_urn:
            top = by_urn[top["parent"]]
        if top["custom"]:
            key, group = STACK_GROUP, Group(STACK_GROUP, "", None)
        else:
            key, group = top["urn"], Group(top["name"], top["type"], top["urn"])
        groups.setdefault(key, group)
        groups[key].counts[r["type"]] += 1
    return sorted(groups.values(), key=lambda g: (g.name == STACK_GROUP, g.name))


def _short_urn(urn: str | None) -> str:
    if not urn:
        return "-"
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]}::{parts[-1]}" if len(parts) >= 4 else urn


def _money(v: Any) -> str:
    return f"{float(v):,.2f}" if isinstance(v, int | float) else str(v)


def verdict_reasons(plan: Mapping[str, Any]) -> list[str]:
    s = plan["summary"]
    reasons = []
    if s["mandatoryViolations"]:
        reasons.append(f"{s['mandatoryViolations']} mandatory policy violation(s)")
    if s["invalidManifests"]:
        reasons.append(f"{s['invalidManifests']} Kubernetes manifest error(s)")
    if s["invalidAwsValues"]:
        reasons.append(f"{s['invalidAwsValues']} invalid AWS value(s)")
    if s["costErrors"]:
        reasons.append("the cost estimate failed")
    return reasons


# ---- table ----------------------------------------------------------------------------------------------
def render_table(plan: Mapping[str, Any]) -> str:
    cfg = plan["config"]
    s = plan["summary"]
    out: list[str] = [
        f"visionrag offline preview: stack {plan['stack']} (tier {cfg['tier']}, region {cfg['region']})",
        "",
        f"Resources: {s['resources']} ({s['customResources']} resources, {s['components']} components)",
    ]
    groups = group_resources(plan["resources"])
    width = max([len(g.name) for g in groups] + [9])
    out.append(f"  {'COMPONENT':<{width}}  {'COUNT':>5}  TYPE")
    for g in groups:
        out.append(f"  {g.name:<{width}}  {g.total:>5}  {g.type}")
        for t, n in sorted(g.counts.items()):
            if t != g.type:
                out.append(f"  {'':<{width}}  {n:>5}    {t}")
    if not groups:
        out.append("  (no resources)")

    out += ["", "Policy violations"]
    pack = plan["policyPack"]
    if pack["notice"]:
        out.append(f"  NOTICE: {pack['notice']}")
    if pack["available"]:
        if not plan["violations"]:
            out.append("  none")
        for v in sorted(plan["violations"], key=lambda v: (v["level"] != "mandatory", v["policy"])):
            out.append(f"  [{v['level'].upper()}] {v['policy']}: {v['message']}  ({_short_urn(v.get('urn'))})")

    out += ["", "Cost"]
    cost = plan["cost"]
    if not cost.get("available"):
        out.append(f"  NOTICE: {cost.get('notice')}")
    elif cost.get("error"):
        out.append(f"  ERROR: {cost['error']}")
    elif cost.get("notice"):
        out.append(f"  NOTICE: {cost['notice']}")
    else:
        out.append(
            f"  {_money(cost.get('monthlyTotal'))} {cost.get('currency', 'USD')}/month "
            f"(region {cost.get('region')}, prices of {cost.get('priceTableDate')})"
        )
        items = sorted(cost.get("items", []), key=lambda i: -float(i.get("monthly") or 0))
        for item in items:
            out.append(
                f"  {_money(item.get('monthly')):>12}  {item.get('name')}  [{item.get('type')}] {item.get('basis', '')}"
            )

    m = plan["manifests"]
    out += [
        "",
        f"Kubernetes manifests: {m['count']} object(s), Kubernetes {m['kubernetesVersion']} "
        f"(schemas {m['schemaVersion'] or 'unavailable'}, strict): {'valid' if m['valid'] else 'INVALID'}",
    ]
    for e in m["errors"]:
        out.append(f"  {e['kind']}/{e['name']} {e['path']}: {e['message']}")
    for u in m["unchecked"]:
        out.append(f"  unchecked: {u['apiVersion']} {u['kind']} ({u['reason']})")

    a = plan["awsValues"]
    out += ["", f"AWS values: {a['checked']} checked against botocore models: {'valid' if a['valid'] else 'INVALID'}"]
    for e in a["errors"]:
        out.append(f"  [{e['policy']}] {e['message']}")

    reasons = verdict_reasons(plan)
    out += ["", "Result: OK" if s["ok"] else "Result: BLOCKED (" + "; ".join(reasons) + ")"]
    return "\n".join(out) + "\n"


# ---- markdown -------------------------------------------------------------------------------------------
def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Mapping[str, Any]) -> str:
    cfg = plan["config"]
    s = plan["summary"]
    reasons = verdict_reasons(plan)
    status = "✅ OK" if s["ok"] else "❌ BLOCKED: " + "; ".join(reasons)
    out = [
        f"### `{plan['stack']}`: offline preview",
        "",
        f"**{status}** · tier `{cfg['tier']}` · region `{cfg['region']}` · {s['resources']} resources "
        f"({s['components']} components) · {s['mandatoryViolations']} mandatory / {s['advisoryViolations']} "
        "advisory violations",
        "",
    ]

    out += ["#### Policy violations", ""]
    pack = plan["policyPack"]
    if pack["notice"]:
        out += [f"> ⚠️ {pack['notice']}", ""]
    if pack["available"]:
        if plan["violations"]:
            out += ["| level | policy | message | resource |", "|---|---|---|---|"]
            for v in sorted(plan["violations"], key=lambda v: (v["level"] != "mandatory", v["policy"])):
                out.append(
                    f"| {v['level']} | `{_md(v['policy'])}` | {_md(v['message'])} | `{_md(_short_urn(v.get('urn')))}` |"
                )
        else:
            out.append("None.")
        out.append("")

    out += ["#### Cost", ""]
    cost = plan["cost"]
    if not cost.get("available"):
        out.append(f"> ⚠️ {cost.get('notice')}")
    elif cost.get("error"):
        out.append(f"> ❌ {_md(cost['error'])}")
    elif cost.get("notice"):
        out.append(f"> ⚠️ {_md(cost['notice'])}")
    else:
        out.append(
            f"**{_money(cost.get('monthlyTotal'))} {cost.get('currency', 'USD')}/month** "
            f"(region `{cost.get('region')}`, prices of {cost.get('priceTableDate')})"
        )
        items = sorted(cost.get("items", []), key=lambda i: -float(i.get("monthly") or 0))
        if items:
            out += ["", "<details><summary>Line items</summary>", "", "| monthly | resource | type | basis |"]
            out.append("|---:|---|---|---|")
            for i in items:
                out.append(
                    f"| {_money(i.get('monthly'))} | `{_md(i.get('name'))}` | `{_md(i.get('type'))}` "
                    f"| {_md(i.get('basis', ''))} |"
                )
            out += ["", "</details>"]
    out.append("")

    m = plan["manifests"]
    mark = "✅" if m["valid"] else "❌"
    out += [
        "#### Kubernetes manifests",
        "",
        f"{mark} {m['count']} object(s) validated strictly against Kubernetes {m['kubernetesVersion']} schemas "
        f"({m['schemaVersion'] or 'unavailable'}).",
    ]
    if m["errors"]:
        out += ["", "| object | path | error |", "|---|---|---|"]
        for e in m["errors"]:
            out.append(f"| `{_md(e['kind'])}/{_md(e['name'])}` | `{_md(e['path'])}` | {_md(e['message'])} |")
    for u in m["unchecked"]:
        out.append(f"- unchecked: `{u['apiVersion']}` `{u['kind']}` ({u['reason']})")
    out.append("")

    a = plan["awsValues"]
    out += [
        "#### AWS values",
        "",
        f"{'✅' if a['valid'] else '❌'} {a['checked']} enum-like value(s) checked against botocore service models.",
    ]
    for e in a["errors"]:
        out.append(f"- `{e['policy']}`: {_md(e['message'])}")
    out.append("")

    groups = group_resources(plan["resources"])
    out += ["<details><summary>Resources by component</summary>", "", "| component | type | resources |"]
    out.append("|---|---|---:|")
    for g in groups:
        detail = ", ".join(f"{t.split(':')[-1]} x{n}" for t, n in sorted(g.counts.items()) if t != g.type)
        out.append(f"| `{_md(g.name)}` | `{_md(g.type)}` | {g.total} ({_md(detail)}) |")
    out += ["", "</details>", ""]
    return "\n".join(out)
