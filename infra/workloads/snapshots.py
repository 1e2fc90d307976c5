"""The Qdrant snapshot CronJob: snapshots every Qdrant node and uploads to the `snapshots` bucket.

The job's code is the app's (`app/ops`); this wires image, ServiceAccount (snapshots bucket only), schedule and
retention. `concurrencyPolicy: Forbid` so a slow run is never doubled; the deadline ends a hung run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.container import SECRETS_DIR, ContainerSpec, Resources, pod_spec, secrets_volume
from infra.workloads.labels import labels

NAME = "snapshots"
_CRON = r"^(\S+\s+){4}\S+$"


@dataclass(frozen=True, kw_only=True)
class SnapshotJobArgs:
    provider: k8s.Provider
    namespace: str
    image: str
    command: Sequence[str]
    schedule: str
    resources: Resources
    service_account: pulumi.Input[str]
    env: Mapping[str, pulumi.Input[str]]
    secrets: Mapping[str, str]
    depends_on: tuple[pulumi.Resource, ...] = ()


class SnapshotJob(pulumi.ComponentResource):
    cronjob: k8s.batch.v1.CronJob

    def __init__(self, name: str, args: SnapshotJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not re.match(_CRON, args.schedule.strip()):
            raise ValueError(f"SnapshotJobArgs.schedule: {args.schedule!r} is not a 5-field cron expression")
        if not args.command:
            raise ValueError("SnapshotJobArgs.command: the job needs a command")
        super().__init__("visionrag:workloads:SnapshotJob", name, None, opts)
        spec = ContainerSpec(
            name=NAME,
            image=args.image,
            resources=args.resources,
            command=list(args.command),
            env={**args.env, "SETTINGS_SECRETS_DIR": SECRETS_DIR},
            read_only_mounts={"secrets": SECRETS_DIR},
            run_to_completion=True,
        )
        pod = pod_spec(
            service_account=args.service_account,
            containers=[spec],
            volumes=[secrets_volume("secrets", args.secrets)],
            restart_policy="Never",
        )
        self.cronjob = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=args.namespace, labels=labels(NAME)),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.schedule,
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                starting_deadline_seconds=900,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(NAME)),
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=2,
                        active_deadline_seconds=3 * 3600,
                        ttl_seconds_after_finished=7 * 86400,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(NAME)), spec=pod
                        ),
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"schedule": args.schedule})
