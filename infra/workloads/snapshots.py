"""The Qdrant snapshot CronJob: snapshots every Qdrant node and uploads to the `snapshots` bucket.

The job's code is the app's (`app/ops`); this wires image, ServiceAccount (the snapshots bucket, plus appending its
audit events to the audit bucket), schedule and retention. `concurrencyPolicy: Forbid` so a slow run is never
doubled; the deadline ends a hung run. `ops_cronjob` is that shape for every scheduled ops command (the restore
drill, infra/workloads/restore_drill.py, too).
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


def check_schedule(schedule: str, field_name: str) -> str:
    """A 5-field cron expression (the CronJob's `schedule`; `time_zone` is set separately), or ValueError."""
    if not re.match(_CRON, schedule.strip()):
        raise ValueError(f"{field_name}: {schedule!r} is not a 5-field cron expression")
    return schedule


def ops_cronjob(
    resource_name: str,
    *,
    workload: str,
    args: SnapshotJobArgs,
    active_deadline_s: int,
    opts: pulumi.ResourceOptions,
    final_exit_codes: Sequence[int] = (),
) -> k8s.batch.v1.CronJob:
    """An ops command on a schedule: the shape every maintenance CronJob shares (the snapshot job, the restore
    drill). `concurrencyPolicy: Forbid` so a slow run is never doubled, a bounded retry, a deadline that ends a
    hung run, the app's hardened pod (container.py) under the workload's own ServiceAccount.

    `final_exit_codes`: exit codes that are an answer, not a crash (a drill that found a mismatch): the Job fails
    at once instead of retrying (podFailurePolicy, GA since Kubernetes 1.31; needs restartPolicy Never, which every
    ops pod has)."""
    spec = ContainerSpec(
        name=workload,
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
    return k8s.batch.v1.CronJob(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=workload, namespace=args.namespace, labels=labels(workload)),
        spec=k8s.batch.v1.CronJobSpecArgs(
            schedule=args.schedule,
            time_zone="Etc/UTC",
            concurrency_policy="Forbid",
            starting_deadline_seconds=900,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=3,
            job_template=k8s.batch.v1.JobTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(workload)),
                spec=k8s.batch.v1.JobSpecArgs(
                    backoff_limit=2,
                    active_deadline_seconds=active_deadline_s,
                    pod_failure_policy=(
                        k8s.batch.v1.PodFailurePolicyArgs(
                            rules=[
                                k8s.batch.v1.PodFailurePolicyRuleArgs(
                                    action="FailJob",
                                    on_exit_codes=k8s.batch.v1.PodFailurePolicyOnExitCodesRequirementArgs(
                                        container_name=workload, operator="In", values=list(final_exit_codes)
                                    ),
                                )
                            ]
                        )
                        if final_exit_codes
                        else None
                    ),
                    ttl_seconds_after_finished=7 * 86400,
                    template=k8s.core.v1.PodTemplateSpecArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(workload)), spec=pod
                    ),
                ),
            ),
        ),
        opts=opts,
    )


class SnapshotJob(pulumi.ComponentResource):
    cronjob: k8s.batch.v1.CronJob

    def __init__(self, name: str, args: SnapshotJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_schedule(args.schedule, "SnapshotJobArgs.schedule")
        if not args.command:
            raise ValueError("SnapshotJobArgs.command: the job needs a command")
        super().__init__("visionrag:workloads:SnapshotJob", name, None, opts)
        self.cronjob = ops_cronjob(
            f"{name}-cronjob",
            workload=NAME,
            args=args,
            active_deadline_s=3 * 3600,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"schedule": args.schedule})
