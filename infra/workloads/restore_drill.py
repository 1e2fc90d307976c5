"""The monthly restore drill: `python -m app.ops.drill` on a schedule (prod by default, stack config elsewhere).

It restores the newest Qdrant snapshot from the snapshots bucket into a scratch collection, compares it with the
live one (point counts, exact top-k overlap of sample queries), writes an audit event and always deletes the
scratch collection; a failed drill is a failed Job (exit 1) that the CronJob's failed-jobs history keeps, plus an
`ops.drill` `failed` audit event (no alarm watches Jobs yet: docs/runbooks/dr-drill.md says where to look).
Same image and pod shape as the snapshot job (snapshots.ops_cronjob);
its own ServiceAccount may read the snapshots bucket (to presign the snapshot URLs Qdrant downloads) and append
audit events, nothing else (iam_scopes.py). The limits below are the drill's; stack config
validates `workloads.restoreDrill` against them (stacks/config/restore_drill.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.workloads.snapshots import SnapshotJobArgs, check_schedule, ops_cronjob

NAME = "restore-drill"
# Monthly, the 1st at 04:41 UTC: after the daily snapshot (03:17 by default) has landed in S3.
DEFAULT_SCHEDULE = "41 4 1 * *"
QUERIES = (1, 1000)
TOP_K = (1, 100)
# A restore of a large collection plus the comparison; the Job is killed (and fails) after this.
DEADLINE_S = 4 * 3600


@dataclass(frozen=True, kw_only=True)
class RestoreDrillSettings:
    """What a stack chooses about the drill (stack config `workloads.restoreDrill`, tier defaults in tiers.py)."""

    schedule: str = DEFAULT_SCHEDULE
    queries: int = 20
    top_k: int = 10
    min_overlap: float = 0.9
    max_drift: float = 0.05

    def __post_init__(self) -> None:
        check_schedule(self.schedule, "RestoreDrillSettings.schedule")
        for field_name, value, (low, high) in (("queries", self.queries, QUERIES), ("top_k", self.top_k, TOP_K)):
            if not low <= value <= high:
                raise ValueError(f"RestoreDrillSettings.{field_name}: {value}; allowed {low}..{high}")
        for field_name, fraction in (("min_overlap", self.min_overlap), ("max_drift", self.max_drift)):
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"RestoreDrillSettings.{field_name}: {fraction}; allowed 0..1")

    def command(self) -> list[str]:
        """The app's CLI (app/ops/drill.py) with this stack's thresholds."""
        return [
            "python",
            "-m",
            "app.ops.drill",
            "--queries",
            str(self.queries),
            "--k",
            str(self.top_k),
            "--min-overlap",
            str(self.min_overlap),
            "--max-drift",
            str(self.max_drift),
        ]


class RestoreDrillJob(pulumi.ComponentResource):
    def __init__(self, name: str, args: SnapshotJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_schedule(args.schedule, "RestoreDrillJob schedule")
        if not args.command or "app.ops.drill" not in args.command:
            raise ValueError("RestoreDrillJob command: must run `python -m app.ops.drill`")
        super().__init__("visionrag:workloads:RestoreDrillJob", name, None, opts)
        self.cronjob = ops_cronjob(
            f"{name}-cronjob",
            workload=NAME,
            args=args,
            active_deadline_s=DEADLINE_S,
            # 1 mismatch, 2 bad input (no snapshot): answers, a retry would restore again for nothing. 3 (audit
            # bucket not writable, nothing done) and crashes are retried.
            final_exit_codes=(1, 2),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"schedule": args.schedule})
