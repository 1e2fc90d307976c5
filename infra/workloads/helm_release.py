"""One way to install a pinned add-on chart: every Helm release the stacks run is built here.

The chart, version and repository are a pin from `infra.workloads.addons.CHARTS` (the pins the policy pack keeps
chart defaults for); the release settings are the same for all: the release rolls back by itself when an
upgrade fails (`atomic`, `cleanup_on_fail`), keeps a bounded history, and gets ten minutes to become ready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def pinned_release(
    resource_name: str,
    release: str,
    pin: tuple[str, str, str],  # addons.CHARTS[release]: (chart, version, repository)
    *,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> k8s.helm.v3.Release:
    chart, version, repo = pin
    return k8s.helm.v3.Release(
        resource_name,
        name=release,
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
        namespace=namespace,
        create_namespace=False,
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        timeout=600,
        values=dict(values),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )
