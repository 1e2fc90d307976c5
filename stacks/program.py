"""The composition root: builds the components in dependency order from the validated StackConfig and exports
what operators need. The only place that maps config onto component Args; components never read config.

Each section below is owned by the component's author; keep the order (later components take earlier outputs).
"""

from __future__ import annotations

import pulumi

from stacks.config import StackConfig, config_from_pulumi


def build(cfg: StackConfig) -> None:
    """Register every resource of the stack described by `cfg`."""
    # ---- platform: keys, network, storage, secrets, registry (issue 3) -------------------------------
    # ---- platform: cluster, node groups, edge, cache, observability (issue 3) ------------------------
    # ---- workloads (issue 4) --------------------------------------------------------------------------
    pulumi.export("tier", cfg.tier)
    pulumi.export("region", cfg.region)


def main() -> None:
    """Entry point of the real CLI (root __main__.py): config is validated before any resource exists."""
    cfg = config_from_pulumi(pulumi.get_stack())
    build(cfg)
