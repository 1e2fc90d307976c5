"""Alerting, cost and tracing settings: where alarms go, the monthly budget and where traces go."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from infra.observability import EMAIL
from infra.scrape_config import MAX_SCRAPE_INTERVAL_SECONDS, MIN_SCRAPE_INTERVAL_SECONDS
from infra.workloads.otel_collector import SAMPLE_RATIO_MAX, SAMPLE_RATIO_MIN
from stacks.config.base import StrictModel

# In-cluster Service DNS names: `<service>.<namespace>.svc[.cluster.local]`.
IN_CLUSTER = re.compile(r"^(?P<service>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc(\.cluster\.local)?$")


def otlp_collector(endpoint: str) -> tuple[str | None, int]:
    """(namespace of an in-cluster collector or None, port) of a validated OTLP/HTTP endpoint."""
    parts = urlsplit(endpoint)
    match = IN_CLUSTER.match(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (match.group("namespace") if match else None, port)


class ObservabilityConfig(StrictModel):
    alarm_emails: list[str] = Field(default_factory=list)
    monthly_budget_usd: float = Field(gt=0)
    alb_5xx_rate_percent: float = Field(default=5.0, gt=0, le=100)
    # 4xx (ALB + targets) share of requests, over 5-minute windows with enough traffic (infra/alarms.py).
    alb_4xx_rate_percent: float = Field(gt=0, le=100)  # tier defaults in tiers.py
    cache_memory_percent: float = Field(default=80.0, gt=0, le=100)
    # The AMP managed scraper refuses intervals under 30 s (bounds owned by infra/scrape_config.py).
    scrape_interval_seconds: int = Field(
        default=MIN_SCRAPE_INTERVAL_SECONDS, ge=MIN_SCRAPE_INTERVAL_SECONDS, le=MAX_SCRAPE_INTERVAL_SECONDS
    )
    # Tracing of the api, worker and embedder (app/core/telemetry.py). On in every tier: the in-cluster collector
    # (infra/workloads/otel_collector.py) forwards to AWS X-Ray; `otlpEndpoint` sends to a managed collector
    # instead (no collector is deployed); `tracing: false` turns tracing off.
    tracing: bool = True
    # Fraction of new traces kept (parent-based: a call inside a trace follows its caller). Per tier (tiers.py).
    trace_sample_ratio: float = 1.0
    # OTLP/HTTP collector (app/core/telemetry.py appends /v1/traces); None: the in-cluster collector.
    otlp_endpoint: str | None = None

    @field_validator("trace_sample_ratio")
    @classmethod
    def _ratio(cls, v: float) -> float:
        if not SAMPLE_RATIO_MIN <= v <= SAMPLE_RATIO_MAX:
            raise ValueError(
                f"{v!r} is not a sampling ratio; allowed: {SAMPLE_RATIO_MIN} (no new traces) to {SAMPLE_RATIO_MAX} "
                "(every trace), e.g. 0.05"
            )
        return v

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_endpoint(cls, v: str | None) -> str | None:
        if v is None:
            return v
        allowed = (
            "allowed: https://<host>[:443] (a managed collector) or http(s)://<service>.<namespace>.svc"
            "[.cluster.local][:port] (an in-cluster collector), with no credentials, path, query or fragment"
        )
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ValueError(f"{v!r} is not a URL; {allowed}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http(s) URL; {allowed}")
        if parts.username or parts.password or parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError(f"{v!r} carries credentials, a path, a query or a fragment; {allowed}")
        namespace, port = otlp_collector(v)
        # Traces carry routes and timings: plain http only inside the cluster; outside, only the 443 the pods'
        # egress policy already allows (any other port would need an egress hole to the whole internet).
        if namespace is None and (parts.scheme != "https" or port != 443):
            raise ValueError(f"{v!r}: a collector outside the cluster must be https on port 443; {allowed}")
        return v

    @field_validator("alarm_emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for e in v:
            if not EMAIL.match(e):
                raise ValueError(f"{e!r} is not an e-mail address")
        return v
