"""Fixtures: Workloads recorded against stand-in platform outputs (see platform_stub.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stacks.engine.offline import Record
from tests.infra.workloads.platform_stub import record_workloads


@pytest.fixture(scope="session")
def wl_records() -> dict[str, Record]:
    return {s: record_workloads(s) for s in ("dev", "staging", "prod")}


@pytest.fixture(scope="session")
def wl_record_of() -> Callable[..., Record]:
    return record_workloads
