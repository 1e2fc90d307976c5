"""`python -m stacks`: the offline preview, the manifest export and post-deploy verify.

    python -m stacks preview <stack> [--format table|json|markdown] [--plan-out FILE]
    python -m stacks manifests <stack> --out DIR
    python -m stacks images <stack> [--third-party] [--format table|json]   (what CI scans)
    python -m stacks preflight <stack> [--format table|json|markdown] [--region R]   (before `up`, boto3)
    python -m stacks verify <stack> [...]          (stacks/verify/post_deploy.py)

Exit status: 0 nothing blocks a deploy; 1 a mandatory policy violation, an invalid Kubernetes manifest, an invalid
AWS value or a failed cost estimate (or the program itself failed); 2 bad config or usage (the ConfigError
names the key, the bad value and what is allowed; nothing was registered).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from stacks.config import ConfigError
from stacks.engine.offline import ROOT, Record, run_stack

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2
FORMATS = ("table", "json", "markdown")


def known_stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stacks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    stacks = known_stacks()

    p = sub.add_parser("preview", help="run the stack offline and judge it (policies, cost, manifests, AWS values)")
    p.add_argument("stack", choices=stacks)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--plan-out", type=Path, help="also write the plan JSON to this file")

    m = sub.add_parser("manifests", help="write every Kubernetes object of the stack as validated YAML")
    m.add_argument("stack", choices=stacks)
    m.add_argument("--out", type=Path, required=True, help="directory to write into (created)")

    i = sub.add_parser("images", help="every container image the stack runs (pods and Helm releases)")
    i.add_argument("stack", choices=stacks)
    i.add_argument("--third-party", action="store_true", help="only the distinct images this project does not build")
    i.add_argument("--format", choices=("table", "json"), default="table")

    f = sub.add_parser("preflight", help="check the live account before `up` (zone, images, quota, weights, ...)")
    f.add_argument("stack", choices=stacks)
    f.add_argument("--format", choices=FORMATS, default="table")
    f.add_argument("--region", help="AWS region (default: the stack's region)")

    sub.add_parser("verify", help="check a deployed stack against AWS (stacks/verify/post_deploy.py)", add_help=False)
    return parser


def _run(stack: str, err: TextIO) -> Record | int:
    try:
        return run_stack(stack)
    except ConfigError as e:
        print(f"error: {e}", file=err)
        return EXIT_USAGE
    except Exception:  # the program itself failed: show where, and block
        print(f"error: the program for stack '{stack}' failed:", file=err)
        traceback.print_exc(file=err)
        return EXIT_BLOCKED


def preview(stack: str, fmt: str, plan_out: Path | None, out: TextIO, err: TextIO) -> int:
    from stacks.engine.plan import PolicyPackError, build_plan, exit_code
    from stacks.engine.render import render_markdown, render_table

    record = _run(stack, err)
    if isinstance(record, int):
        return record
    try:
        plan = build_plan(record)
    except PolicyPackError as e:
        print(f"error: {e}", file=err)
        return EXIT_USAGE
    text = json.dumps(plan, indent=2, sort_keys=False, default=str)
    if plan_out is not None:
        plan_out.parent.mkdir(parents=True, exist_ok=True)
        plan_out.write_text(text + "\n")
    if fmt == "json":
        out.write(text + "\n")
    elif fmt == "markdown":
        out.write(render_markdown(plan))
    else:
        out.write(render_table(plan))
    return exit_code(plan)


def manifests(stack: str, directory: Path, out: TextIO, err: TextIO) -> int:
    from stacks.engine.manifests import build_manifests, write_manifests

    record = _run(stack, err)
    if isinstance(record, int):
        return record
    report = build_manifests(record)
    written = write_manifests(report.manifests, directory)
    out.write(
        f"{len(written)} Kubernetes object(s) written to {directory} "
        f"(validated strictly for Kubernetes {report.kubernetes_version}, schemas {report.schema_version})\n"
    )
    for e in report.errors:
        out.write(f"  INVALID {e['kind']}/{e['name']} {e['path']}: {e['message']}\n")
    for u in report.unchecked:
        out.write(f"  unchecked {u['apiVersion']} {u['kind']}: {u['reason']}\n")
    return EXIT_OK if report.valid else EXIT_BLOCKED


def images(stack: str, third_party_only: bool, fmt: str, out: TextIO, err: TextIO) -> int:
    from stacks.engine.images import stack_images, third_party
    from stacks.engine.plan import build_plan

    record = _run(stack, err)
    if isinstance(record, int):
        return record
    uses = stack_images(build_plan(record)["resources"])
    if third_party_only:
        listed: list[str] = third_party(uses)
        out.write(json.dumps(listed) + "\n" if fmt == "json" else "".join(f"{image}\n" for image in listed))
    elif fmt == "json":
        out.write(json.dumps([{"image": u.image, "source": u.source, "project": u.project} for u in uses]) + "\n")
    else:
        out.write("".join(f"{u.image}\t{u.source}\n" for u in uses))
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    if args_list[:1] == ["verify"]:
        from stacks.verify import post_deploy as verify

        return int(verify.main(args_list[1:]))
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as e:  # argparse: usage errors exit 2, --help exits 0
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    if args.command == "preview":
        return preview(args.stack, args.format, args.plan_out, out, err)
    if args.command == "manifests":
        return manifests(args.stack, args.out, out, err)
    if args.command == "images":
        return images(args.stack, args.third_party, args.format, out, err)
    if args.command == "preflight":
        from stacks.verify import preflight

        return preflight.main(args.stack, args.format, out, err, region=args.region)
    raise AssertionError(args.command)  # pragma: no cover - argparse restricts the commands
