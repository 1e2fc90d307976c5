"""Canary gate: may the api canary take more traffic? `python -m stacks.verify.canary <stack> [--outputs FILE]`.

The deploy workflow runs it after each bake period and before raising the canary weight; a non-zero exit makes
the workflow clear the canary (rollback = the stable Deployment takes 100% again). It passes only when the canary
target group has registered targets that are ALL healthy and none of the stack's alarms is in ALARM. An alarm
the stack exports but CloudWatch does not know fails too: a deleted alarm must not read as a quiet one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stacks.verify.checks import CheckResult
from stacks.verify.post_deploy import OUT_REGION, STACKS, OutputsError, load_outputs, render_table

OUT_CANARY_TARGET_GROUP = "canaryTargetGroupArn"
OUT_API_TARGET_GROUP = "apiTargetGroupArn"
OUT_ALARMS = "alarmNames"  # list[str]: the api 5xx / latency / target health alarms the rollout watches


def _targets(elbv2: Any, label: str, arn: str) -> CheckResult:
    try:
        found = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    except (ClientError, BotoCoreError) as exc:
        return CheckResult("canary", label, "targets healthy", False, f"cannot read: {exc}")
    states = [t.get("TargetHealth", {}).get("State") for t in found]
    bad = [s for s in states if s != "healthy"]
    ok = bool(states) and not bad
    detail = f"{len(states)} target(s), states {sorted(set(states))}" if states else "no registered targets"
    return CheckResult("canary", label, "targets healthy", ok, detail)


def _alarms(cloudwatch: Any, names: Sequence[str]) -> list[CheckResult]:
    results: list[CheckResult] = []
    try:
        found = {
            a["AlarmName"]: a
            for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=list(names))
            for a in page.get("MetricAlarms", [])
        }
    except (ClientError, BotoCoreError) as exc:
        return [CheckResult("canary", "alarms", "no alarm firing", False, f"cannot read: {exc}")]
    for name in names:
        alarm = found.get(name)
        if alarm is None:
            results.append(CheckResult("canary", name, "no alarm firing", False, "alarm does not exist"))
        else:
            state = alarm.get("StateValue")
            results.append(CheckResult("canary", name, "no alarm firing", state != "ALARM", f"StateValue={state}"))
    return results


def gate(outputs: Mapping[str, Any], *, region: str | None = None, session: Any = None) -> list[CheckResult]:
    import boto3

    region = region or outputs.get(OUT_REGION)
    session = session or boto3.session.Session(region_name=region)
    results: list[CheckResult] = []
    canary_tg = outputs.get(OUT_CANARY_TARGET_GROUP)
    alarms = outputs.get(OUT_ALARMS)
    if not canary_tg:
        results.append(CheckResult("outputs", OUT_CANARY_TARGET_GROUP, "present", False, "stack output missing"))
    if not isinstance(alarms, list) or not alarms:
        results.append(CheckResult("outputs", OUT_ALARMS, "present", False, "expected a non-empty list of names"))
        alarms = []
    elbv2 = session.client("elbv2", region_name=region)
    if canary_tg:
        results.append(_targets(elbv2, "canary target group", str(canary_tg)))
    if outputs.get(OUT_API_TARGET_GROUP):
        results.append(_targets(elbv2, "stable target group", str(outputs[OUT_API_TARGET_GROUP])))
    if alarms:
        results += _alarms(session.client("cloudwatch", region_name=region), [str(a) for a in alarms])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.verify.canary", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("--outputs", metavar="FILE", help="stack outputs JSON; '-' reads stdin; default: pulumi CLI")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    try:
        outputs = load_outputs(args.outputs, args.stack)
    except OutputsError as exc:
        print(f"canary gate {args.stack}: {exc}", file=sys.stderr)
        return 2
    results = gate(outputs, region=args.region)
    print(render_table(results))
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"canary gate {args.stack}: HOLD - {len(failed)} check(s) failed:", file=sys.stderr)
        for r in failed:
            print(f"  - {r.resource}: {r.check} ({r.detail})", file=sys.stderr)
        return 1
    print(f"canary gate {args.stack}: healthy, the canary may take more traffic")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
