"""Wall time of the offline preview of all three stacks: in one process, and in three processes side by side.

    .venv/bin/python benchmarks/preview.py [--repeat N] [--stacks dev,staging,prod]

One process: imports once, then runs and judges every stack in turn (what the test session and a single CI step
do). One command, side by side: `stacks.engine.plan.plan_stacks` runs the first stack, then forks a worker per other
stack, which inherit the imports the first run paid for. Three processes: `python -m stacks preview <stack>
--format json` for each stack at the same time (what a CI matrix or `make -j3` does; each pays the import cost,
they share the CPUs). Figures are best-of-N wall seconds, with the CPU time (user + system, children included)
and the load average beside them: on a shared machine the load decides the wall time, the CPU time much less.
The PR-gate target is 5 s wall for all three stacks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
        "from stacks.engine.offline import run_stack\n"
        "from stacks.engine.plan import build_plan\n"
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
    return dict(json.loads(out.strip().splitlines()[-1]))


def side_by_side(stacks: list[str]) -> tuple[float, float]:
    """(wall, CPU) of one interpreter planning every stack with plan_stacks (its forked workers' CPU included)."""
    code = (
        "import json, os, sys, time\n"
        "t0 = time.perf_counter()\n"
        "from stacks.engine.plan import plan_stacks\n"
        "plans = plan_stacks(sys.argv[1:])\n"
        "wall = time.perf_counter() - t0\n"
        "t = os.times()\n"
        "print(json.dumps([wall, t.user + t.system + t.children_user + t.children_system]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *stacks], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    wall, cpu = json.loads(out.strip().splitlines()[-1])
    return float(wall), float(cpu)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def three_processes(stacks: list[str]) -> tuple[float, list[int], float]:
    c0 = _children_cpu()
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
    return time.perf_counter() - t0, codes, _children_cpu() - c0


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

    forked = min(side_by_side(stacks) for _ in range(args.repeat))
    print(
        f"one command, side by side (plan_stacks): {forked[0]:.2f} s wall, {forked[1]:.2f} s CPU "
        f"(best of {args.repeat})"
    )

    runs = []
    codes: list[int] = []
    for _ in range(args.repeat):
        wall, codes, cpu = three_processes(stacks)
        runs.append((wall, cpu))
    wall, cpu = min(runs)
    print(
        f"three processes (side by side):          {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"(best of {args.repeat}; exit codes {codes})"
    )
    print(f"load average {os.getloadavg()[0]:.1f} at end; PR-gate target {TARGET_S:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
