"""The worker rolls out before the api: a job the new api enqueues never reaches a worker older than the api."""

from __future__ import annotations

import pytest

from stacks.engine.offline import Record

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_api_deployment_waits_for_the_worker_deployment(records: dict[str, Record], stack: str) -> None:
    deployments = {r.inputs["metadata"]["name"]: r for r in records[stack].resources if r.type == DEPLOYMENT}
    worker = deployments["worker"]
    api_like = [d for name, d in deployments.items() if name == "api" or name.startswith("api-")]
    assert api_like
    for api in api_like:
        assert worker.urn in api.dependencies, api.name
    # ...and never the reverse (that would be a cycle, or the old order).
    assert not any(api.urn in worker.dependencies for api in api_like)
