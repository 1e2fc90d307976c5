"""Wall time of the offline preview of all three stacks: in one process, and in three processes side by side.

    .venv/bin/python benchmarks/preview.py [--repeat N] [--stacks dev,staging,prod]

One process: imports once, then runs and judges every stack in turn (what the test session and a single CI step
do). Three processes: `python -m stacks preview <stack> --format json` for each stack at the same time (what a CI
matrix or `make -j3` does; each pays the import cost, they share the CPUs). Figures are best-of-N wall seconds,
with the process CPU time and the load average beside them: on a shared machine the load decides the wall time.
The PR-gate target is 5 s for all three stacks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 5.0


def one_process(stacks: list[str]) -> dict[str, float]:
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter(); c0 = time.process_time()\n"
        "from stacks.offline import run_stack\n"
        "from stacks.plan import build_plan\n"
        "timings = {'imports': time.perf_counter() - t0}\n"
        "for s in sys.argv[1:]:\n"
        "    t = time.perf_counter(); r = run_stack(s); timings[s + ':run'] = time.perf_counter() - t\n"
        "    t = time.perf_counter(); p = build_plan(r); timings[s + ':judge'] = time.perf_counter() - t\n"
        "    timings[s + ':resources'] = len(r.resources)\n"
        "timings['total'] = time.perf_counter() - t0; timings['cpu'] = time.process_time() - c0\n"
        "print(json.dumps(timings))\n"
    )
    # A fresh interpreter, so the import cost is counted as a user would pay it.
    out = subprocess.run(
        [sys.executable, "-c", code, *stacks], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    import json

    return dict(json.loads(out.strip().splitlines()[-1]))


def three_processes(stacks: list[str]) -> tuple[float, list[int]]:
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "stacks", "preview", s, "--format", "json"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for s in stacks
    ]
    codes = [p.wait() for p in procs]
    return time.perf_counter() - t0, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stacks", default="dev,staging,prod")
    args = parser.parse_args()
    stacks = args.stacks.split(",")

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    best: dict[str, float] | None = None
    for _ in range(args.repeat):
        t = one_process(stacks)
        if best is None or t["total"] < best["total"]:
            best = t
    assert best is not None
    print(
        f"one process   ({len(stacks)} stacks in turn): {best['total']:.2f} s wall, {best['cpu']:.2f} s CPU "
        f"(best of {args.repeat})"
    )
    print(f"    imports {best['imports']:.2f} s")
    for s in stacks:
        print(
            f"    {s:<8} {int(best[s + ':resources']):>4} resources: run {best[s + ':run']:.2f} s, "
            f"judge (policies, cost, manifests, AWS values) {best[s + ':judge']:.2f} s"
        )

    walls = []
    codes: list[int] = []
    for _ in range(args.repeat):
        wall, codes = three_processes(stacks)
        walls.append(wall)
    print(f"three processes (side by side):        {min(walls):.2f} s wall (best of {args.repeat}; exit codes {codes})")
    print(f"load average {os.getloadavg()[0]:.1f} at end; PR-gate target {TARGET_S:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
