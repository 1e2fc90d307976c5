"""`python -m app.ops.drill`: the restore drill. Prove the newest Qdrant snapshot in S3 restores and serves.

Restores the latest snapshot run (or `--stamp`) with `SnapshotManager.restore` into a scratch collection
`<alias>_drill_<time>` beside the live one (the alias is never touched), then compares it with the live collection:
- restored points == the point count the snapshot's manifest recorded (what was backed up came back, exactly);
- |live - restored| / max(live, restored) <= `--max-drift` (uploads and deletes since the snapshot are expected,
  a collapse is not);
- `--queries` sample queries, each the pooled-rows multivector of a random restored page, searched exactly
  (brute force, so both sides rank the same way) in both collections: mean top-k overlap >= `--min-overlap`.
The sample queries come from the stored vectors themselves, so the drill needs no embedder (a GPU node may be
scaled to zero when it runs). The scratch collection is ALWAYS deleted, pass or fail. One JSON report on stdout;
audited (app/ops/audit_trail.py). Runbook: docs/runbooks/dr-drill.md.

Exit codes: 0 pass, 1 mismatch (or the restore itself failed), 2 bad input (no snapshot, unknown stamp, a node
count that differs from the snapshot's, bad flags), 3 audit bucket not writable (nothing restored).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from qdrant_client import QdrantClient, models

from app.core.logging import configure_logging
from app.ops.audit_trail import command_audit, run_audited
from app.ops.snapshots import SnapshotError, SnapshotManager, manager_from_settings
from app.services.layout import ROWS

EXACT = models.SearchParams(exact=True)
# Ids read to draw the query sample from: enough for a fair sample, bounded for a large collection.
SAMPLE_POOL = 10_000


@dataclass
class DrillReport:
    passed: bool = False
    alias: str = ""
    live_collection: str = ""
    scratch_collection: str = ""
    stamp: str = ""
    snapshot_created_at: str = ""
    snapshot_points: int = 0
    restored_points: int = 0
    live_points: int = 0
    count_drift: float = 0.0
    queries: int = 0
    k: int = 0
    mean_overlap: float = 0.0
    worst_overlap: float = 0.0
    restore_s: float = 0.0
    compare_s: float = 0.0
    cleaned_up: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class DrillLimits:
    queries: int = 20
    k: int = 10
    min_overlap: float = 0.9
    max_drift: float = 0.05

    def __post_init__(self) -> None:
        if not 1 <= self.queries <= 1000:
            raise ValueError(f"queries={self.queries}: allowed 1..1000")
        if not 1 <= self.k <= 100:
            raise ValueError(f"k={self.k}: allowed 1..100")
        if not 0.0 <= self.min_overlap <= 1.0 or not 0.0 <= self.max_drift <= 1.0:
            raise ValueError("min_overlap and max_drift are fractions in 0..1")


class Drill:
    def __init__(
        self,
        manager: SnapshotManager,
        *,
        client: QdrantClient | None = None,
        limits: DrillLimits | None = None,
        seed: int | None = None,
    ) -> None:
        self.manager = manager
        # The comparison side: node 0 answers for the whole cluster (reads and the scratch delete are cluster-wide).
        self.client = client or manager._client(manager.nodes[0])
        self.limits = limits or DrillLimits()
        self.random = random.Random(seed)  # noqa: S311 - picks sample queries, nothing secret

    def _live(self) -> str:
        aliases = {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}
        live = aliases.get(self.manager.alias) or self.manager.alias
        if not self.client.collection_exists(live):
            raise SnapshotError(f"no live collection behind {self.manager.alias!r}")
        return live

    def run(self, stamp: str | None = None) -> DrillReport:
        """Restore, compare, clean up. SnapshotError (bad input) propagates after the cleanup; any other
        failure is reported as a problem (the drill failed) rather than raised."""
        report = DrillReport(alias=self.manager.alias, k=self.limits.k)
        scratch = f"{self.manager.alias}_drill_{datetime.now(UTC):%Y%m%dT%H%M%S}"
        report.scratch_collection = scratch
        restoring = False  # only a collection this run created is ever deleted
        try:
            report.live_collection = self._live()
            if self.client.collection_exists(scratch):
                raise SnapshotError(f"scratch collection {scratch!r} already exists; is another drill running?")
            started = time.monotonic()
            restoring = True
            manifest = self.manager.restore(stamp, collection=scratch, switch_alias=False)
            report.restore_s = round(time.monotonic() - started, 3)
            report.stamp, report.snapshot_created_at = manifest.stamp, manifest.created_at
            report.snapshot_points = manifest.points
            started = time.monotonic()
            self._compare(report)
            report.compare_s = round(time.monotonic() - started, 3)
        except SnapshotError:
            raise
        except Exception as exc:
            report.problems.append(f"drill failed: {type(exc).__name__}: {exc}")
        finally:
            report.cleaned_up = self._cleanup(scratch, report) if restoring else True
        report.passed = not report.problems
        return report

    def _cleanup(self, scratch: str, report: DrillReport) -> bool:
        try:
            if self.client.collection_exists(scratch):
                self.client.delete_collection(scratch)
            gone = not self.client.collection_exists(scratch)
        except Exception as exc:
            report.problems.append(f"cleanup failed: {type(exc).__name__}: {exc}; delete {scratch!r} by hand")
            return False
        if not gone:
            report.problems.append(f"cleanup failed: {scratch!r} still exists; delete it by hand")
        return gone

    def _compare(self, report: DrillReport) -> None:
        live, scratch, limits = report.live_collection, report.scratch_collection, self.limits
        report.restored_points = self.client.count(scratch, exact=True).count
        report.live_points = self.client.count(live, exact=True).count
        if report.restored_points != report.snapshot_points:
            report.problems.append(
                f"restored {report.restored_points} points, the snapshot recorded {report.snapshot_points}"
            )
        largest = max(report.live_points, report.restored_points, 1)
        report.count_drift = round(abs(report.live_points - report.restored_points) / largest, 4)
        if report.count_drift > limits.max_drift:
            report.problems.append(
                f"live has {report.live_points} points, the restore {report.restored_points}: drift "
                f"{report.count_drift:.2%} > {limits.max_drift:.2%}"
            )
        ids: list[Any] = []
        offset: Any = None
        while len(ids) < SAMPLE_POOL:
            points, offset = self.client.scroll(scratch, limit=256, offset=offset, with_payload=False)
            ids += [p.id for p in points]
            if offset is None:
                break
        if not ids:
            if report.snapshot_points:
                report.problems.append("the restored collection returned no points to query with")
            return
        sample = self.random.sample(ids, min(limits.queries, len(ids)))
        overlaps = []
        for point in self.client.retrieve(scratch, ids=sample, with_vectors=[ROWS], with_payload=False):
            vector = (point.vector or {}).get(ROWS) if isinstance(point.vector, dict) else None
            if not vector:
                report.problems.append(f"restored point {point.id} has no {ROWS!r} vector")
                continue
            found = [
                {
                    p.id
                    for p in self.client.query_points(
                        c, query=vector, using=ROWS, limit=limits.k, search_params=EXACT
                    ).points
                }
                for c in (scratch, live)
            ]
            overlaps.append(len(found[0] & found[1]) / max(len(found[0]), 1))
        report.queries = len(overlaps)
        if overlaps:
            report.mean_overlap = round(sum(overlaps) / len(overlaps), 4)
            report.worst_overlap = round(min(overlaps), 4)
            if report.mean_overlap < limits.min_overlap:
                report.problems.append(
                    f"mean top-{limits.k} overlap {report.mean_overlap:.3f} < {limits.min_overlap:.3f} "
                    f"over {len(overlaps)} queries"
                )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.ops.drill", description=__doc__.splitlines()[0])
    defaults = DrillLimits()  # the flags' defaults are the limits' own
    parser.add_argument("--stamp", help="snapshot run to restore (default: the newest)")
    parser.add_argument("--queries", type=int, default=defaults.queries, help="sample queries (default %(default)s)")
    parser.add_argument("--k", type=int, default=defaults.k, help="top-k compared per query (default %(default)s)")
    parser.add_argument(
        "--min-overlap", type=float, default=defaults.min_overlap, help="pass threshold, mean top-k overlap"
    )
    parser.add_argument(
        "--max-drift", type=float, default=defaults.max_drift, help="allowed live/restored point count drift"
    )
    parser.add_argument("--seed", type=int, default=None, help="fix the query sample (reproduce a report)")
    return parser


def main(argv: list[str] | None = None, *, client: QdrantClient | None = None) -> int:
    """`client`: the comparison client (tests pass Qdrant's local mode; default: the first node over REST)."""
    from app.ops.settings import get_ops_settings

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        limits = DrillLimits(queries=args.queries, k=args.k, min_overlap=args.min_overlap, max_drift=args.max_drift)
    except ValueError as exc:
        parser.error(str(exc))
    settings = get_ops_settings()
    configure_logging(settings.log_level, json=settings.log_json, stream=sys.stderr)
    drill = Drill(manager_from_settings(settings), client=client, limits=limits, seed=args.seed)

    def work(outcome: dict[str, Any]) -> int:
        try:
            report = drill.run(args.stamp)
        except SnapshotError as exc:
            outcome["error"] = str(exc)
            print(json.dumps({"passed": False, "error": str(exc)}), file=sys.stderr)
            return 2
        keys = ("passed", "stamp", "scratch_collection", "snapshot_points", "restored_points", "live_points")
        outcome.update({k: getattr(report, k) for k in keys})
        outcome.update(mean_overlap=report.mean_overlap, cleaned_up=report.cleaned_up, problems=report.problems)
        print(json.dumps(asdict(report), indent=2))
        return 0 if report.passed else 1

    details = {"stamp": args.stamp} if args.stamp else {}
    return run_audited(command_audit(settings, action="ops.drill", target=settings.qdrant_collection, **details), work)


if __name__ == "__main__":
    raise SystemExit(main())
