"""How long `pulumi up` waits for each workload to become ready, stated on the object itself.

The Kubernetes provider waits for a Deployment or StatefulSet to roll out (default 10 minutes) and fails the
update when it does not. Two annotations change that (pulumi-kubernetes "await logic"; #457 added
`pulumi.com/timeoutSeconds`, #417 `pulumi.com/skipAwait`):
- `pulumi.com/timeoutSeconds`: wait this long instead. Used where readiness is the point of the update (the
  api before its TargetGroupBinding, Qdrant before the workloads using it) but legitimately slow: an image
  pull plus the ExternalSecret sync, or EBS volumes attaching.
- `pulumi.com/skipAwait: "true"`: do not wait at all. Only where nothing in the program consumes the
  readiness and it depends on things `up` cannot provide: the embedder needs a GPU node the autoscaler starts
  from zero, a multi-GB image and model weights an operator uploads to the models bucket after the first
  `up` created it (docs/workloads.md "First deploy order"). The api degrades search to 503s meanwhile
  (HEALTH_OPTIONAL_DEPENDENCIES), so waiting would only turn the first `up` into a timeout.

tests/infra/workloads/test_await_policy.py requires every Deployment and StatefulSet to carry one of the two,
bounded by MAX_TIMEOUT_S, and every workload whose readiness needs a GPU node or model weights to skip the wait.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
# Beyond this a "wait" is a hung deploy job: CI runners and humans give up long before.
MAX_TIMEOUT_S = 1800


@dataclass(frozen=True, kw_only=True)
class AwaitPolicy:
    """Either a bounded wait or, with the reason, no wait."""

    timeout_s: int | None = None
    skip_reason: str | None = None

    def __post_init__(self) -> None:
        if (self.timeout_s is None) == (self.skip_reason is None):
            raise ValueError("AwaitPolicy: set exactly one of timeout_s or skip_reason")
        if self.timeout_s is not None and not 60 <= self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"AwaitPolicy.timeout_s: {self.timeout_s} must lie between 60 and {MAX_TIMEOUT_S}")
        if self.skip_reason is not None and not self.skip_reason.strip():
            raise ValueError("AwaitPolicy.skip_reason: say why nothing needs to wait for this workload")

    def annotations(self) -> dict[str, str]:
        if self.timeout_s is not None:
            return {TIMEOUT_ANNOTATION: str(self.timeout_s)}
        return {SKIP_AWAIT_ANNOTATION: "true"}


# CPU workloads: image pull + ExternalSecret sync + startup probe. Past 15 minutes something is wrong (an image
# that was never pushed: `python -m stacks preflight` catches that before `up`).
APP = AwaitPolicy(timeout_s=900)
# Qdrant: one EBS volume per replica to create and attach, pods started in order.
QDRANT = AwaitPolicy(timeout_s=1200)
EMBEDDER = AwaitPolicy(
    skip_reason="readiness needs a GPU node scaled from zero, a multi-GB image and operator-uploaded weights; "
    "nothing in the program consumes it and the api degrades without it"
)
