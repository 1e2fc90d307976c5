"""Post-deploy verify: `python -m stacks verify <stack>` checks the live AWS account against the stack outputs.

The deploy workflow runs it after every `pulumi up` and before promoting to the next stage. Outputs come from
`pulumi stack output --json --show-secrets` (default), a JSON file (`--outputs FILE`) or stdin (`--outputs -`),
so it runs and is tested without the Pulumi CLI. Prints one table row per check; exits 1 naming every failed
check, 2 when the outputs themselves are unusable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from stacks.verify.checks import (
    CheckResult,
    check_bucket,
    check_cluster,
    check_kms_key,
    check_load_balancer,
    check_node_group,
    check_repository,
    check_secret,
)

# The stack outputs verify reads: the one place these names live. The composition root (stacks/program.py)
# must export exactly these keys; a missing one is a failed check, never a silent skip.
OUT_REGION = "region"
OUT_TIER = "tier"
OUT_CLUSTER = "clusterName"
OUT_NODE_GROUPS = "nodeGroupNames"  # list[str] (system + gpu)
OUT_BUCKETS = "bucketNames"  # {pages, snapshots, audit, models, access-logs} (infra/storage.py BUCKETS)
OUT_KMS = "kmsKeyArns"  # {name: key ARN}
OUT_ALB = "albArn"
OUT_WEB_ACL = "webAclArn"  # optional: when present, the ALB's association must be this ACL
OUT_ECR = "ecrRepositoryUrls"  # {api, worker, embedder: "<acct>.dkr.ecr.<region>.amazonaws.com/<repo>"}
OUT_SECRETS = "secretNames"  # {name: secret name or ARN}; describe_secret takes either

REQUIRED_OUTPUTS: tuple[str, ...] = (
    OUT_CLUSTER,
    OUT_NODE_GROUPS,
    OUT_BUCKETS,
    OUT_KMS,
    OUT_ALB,
    OUT_ECR,
    OUT_SECRETS,
)
EXPECTED_BUCKETS = ("pages", "snapshots", "audit", "models", "access-logs")
EXPECTED_REPOSITORIES = ("api", "worker", "embedder")
STACKS = ("dev", "staging", "prod")


class OutputsError(Exception):
    """The outputs could not be read at all (no file, not JSON, not an object)."""


def load_outputs(source: str | None, stack: str, *, stdin: TextIO | None = None) -> dict[str, Any]:
    if source == "-":
        text = (stdin or sys.stdin).read()
        origin = "stdin"
    elif source:
        try:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise OutputsError(f"--outputs {source!r}: {exc.strerror}") from None
        origin = source
    else:
        pulumi = shutil.which("pulumi")
        if pulumi is None:
            raise OutputsError(
                "the pulumi CLI is not on PATH; pass --outputs FILE (from `pulumi stack output --json`) or '-'"
            )
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise OutputsError(f"`pulumi stack output` failed for stack {stack!r}: {proc.stderr.strip()}")
        text, origin = proc.stdout, f"pulumi stack output ({stack})"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OutputsError(f"{origin}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise OutputsError(f"{origin}: expected a JSON object of stack outputs, got {type(data).__name__}")
    return data


def _output_problems(outputs: Mapping[str, Any]) -> list[CheckResult]:
    problems: list[CheckResult] = []

    def bad(key: str, detail: str) -> None:
        problems.append(CheckResult("outputs", key, "present and well-formed", False, detail))

    for key in REQUIRED_OUTPUTS:
        if key not in outputs:
            bad(key, f"stack output {key!r} is missing")
    if OUT_BUCKETS in outputs:
        buckets = outputs[OUT_BUCKETS]
        if not isinstance(buckets, Mapping):
            bad(OUT_BUCKETS, f"expected an object, got {type(buckets).__name__}")
        else:
            for role in EXPECTED_BUCKETS:
                if not buckets.get(role):
                    bad(OUT_BUCKETS, f"no bucket for {role!r} (expected {', '.join(EXPECTED_BUCKETS)})")
    if OUT_ECR in outputs:
        repos = outputs[OUT_ECR]
        if not isinstance(repos, Mapping):
            bad(OUT_ECR, f"expected an object, got {type(repos).__name__}")
        else:
            for name in EXPECTED_REPOSITORIES:
                if not repos.get(name):
                    bad(OUT_ECR, f"no repository for {name!r} (expected {', '.join(EXPECTED_REPOSITORIES)})")
    for key in (OUT_KMS, OUT_SECRETS):
        if key in outputs and (not isinstance(outputs[key], Mapping) or not outputs[key]):
            bad(key, "expected a non-empty object of name -> ARN/name")
    if OUT_NODE_GROUPS in outputs and (not isinstance(outputs[OUT_NODE_GROUPS], list) or not outputs[OUT_NODE_GROUPS]):
        bad(OUT_NODE_GROUPS, "expected a non-empty list of node group names")
    return problems


def _mapping(outputs: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = outputs.get(key)
    return value if isinstance(value, Mapping) else {}


def run_checks(
    outputs: Mapping[str, Any], stack: str, *, region: str | None = None, session: Any = None
) -> list[CheckResult]:
    import boto3  # local: `--help` and the outputs errors work without botocore's import time

    region = region or outputs.get(OUT_REGION) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if session is None:
        session = boto3.session.Session(region_name=region)

    def client(service: str) -> Any:
        return session.client(service, region_name=region)

    results = _output_problems(outputs)
    # The public endpoint (allow-listed) is a dev-tier allowance; every other tier must be private only.
    tier = str(outputs.get(OUT_TIER) or stack)
    kms_arns = {str(k): str(v) for k, v in _mapping(outputs, OUT_KMS).items()}

    s3 = client("s3")
    for role, bucket in _mapping(outputs, OUT_BUCKETS).items():
        if bucket:
            results += check_bucket(s3, str(role), str(bucket))

    kms = client("kms")
    for name, arn in kms_arns.items():
        results += check_kms_key(kms, name, arn)

    if outputs.get(OUT_CLUSTER):
        eks, ec2 = client("eks"), client("ec2")
        cluster = str(outputs[OUT_CLUSTER])
        results += check_cluster(eks, cluster, allow_public_endpoint=tier == "dev")
        for ng in outputs.get(OUT_NODE_GROUPS) or []:
            results += check_node_group(eks, ec2, cluster, str(ng))

    if outputs.get(OUT_ALB):
        web_acl = outputs.get(OUT_WEB_ACL)
        results += check_load_balancer(
            client("elbv2"), client("wafv2"), str(outputs[OUT_ALB]), str(web_acl) if web_acl else None
        )

    repos = _mapping(outputs, OUT_ECR)
    if repos:
        ecr = client("ecr")
        try:
            registry_scan: Mapping[str, Any] | None = ecr.get_registry_scanning_configuration().get(
                "scanningConfiguration"
            )
        except (ClientError, BotoCoreError):  # registry-level scanning is only a fallback for scanOnPush
            registry_scan = None
        for name, url in repos.items():
            if url:
                repository = str(url).split("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
                results += check_repository(ecr, str(name), repository, registry_scan)

    sm = client("secretsmanager")
    for name, arn in _mapping(outputs, OUT_SECRETS).items():
        results += check_secret(sm, str(name), str(arn), kms_arns.values())
    return results


def render_table(results: Sequence[CheckResult]) -> str:
    header = ("RESULT", "AREA", "RESOURCE", "CHECK", "DETAIL")
    rows = [("PASS" if r.ok else "FAIL", r.area, r.resource, r.check, r.detail) for r in results]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]

    def line(row: Sequence[str]) -> str:
        return "  ".join([*(str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=True)), str(row[-1])]).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths] + ["------"]), *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stacks verify",
        description="Check the live AWS account of a deployed stack against its outputs.",
    )
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument(
        "--outputs",
        metavar="FILE",
        help="stack outputs as JSON (`pulumi stack output --json --show-secrets`); '-' reads stdin; "
        "default: run the pulumi CLI",
    )
    parser.add_argument("--region", help="AWS region (default: the 'region' output, then AWS_REGION)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)

    try:
        outputs = load_outputs(args.outputs, args.stack)
    except OutputsError as exc:
        print(f"verify {args.stack}: {exc}", file=sys.stderr)
        return 2

    results = run_checks(outputs, args.stack, region=args.region)
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
    else:
        print(render_table(results))
    if failed:
        print(f"\nverify {args.stack}: {len(failed)} of {len(results)} checks FAILED:", file=sys.stderr)
        for r in failed:
            print(f"  - [{r.area}] {r.resource}: {r.check} ({r.detail})", file=sys.stderr)
        return 1
    print(f"\nverify {args.stack}: all {len(results)} checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
