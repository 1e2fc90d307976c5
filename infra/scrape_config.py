"""The AMP managed scraper's Prometheus configuration: which ports it scrapes and how often.

Pure Python (no pulumi import) so stacks/config validates `observability.scrapeIntervalSeconds` against the same
bounds the component enforces.
"""

from __future__ import annotations

from typing import Any

import yaml

# port -> scrape job; the ports come from ARCHITECTURE.md's service contracts (+ DCGM exporter's default port).
SCRAPE_PORTS: dict[int, str] = {9090: "api", 9091: "worker", 6333: "qdrant", 9400: "dcgm-exporter"}
# The AMP managed collector refuses a scrape configuration whose interval is under 30 seconds (CreateScraper
# validation); the upper bound keeps rate() windows of the dashboards meaningful.
MIN_SCRAPE_INTERVAL_SECONDS = 30
MAX_SCRAPE_INTERVAL_SECONDS = 300
# A scrape must end before the next one starts; 10 s is plenty for these endpoints.
SCRAPE_TIMEOUT_SECONDS = 10


def scrape_configuration(interval_seconds: int) -> str:
    """Prometheus scrape config for the managed scraper: one pod-discovery job per metrics port."""
    jobs: list[dict[str, Any]] = []
    for port, job in SCRAPE_PORTS.items():
        jobs.append(
            {
                "job_name": job,
                "kubernetes_sd_configs": [{"role": "pod"}],
                "metrics_path": "/metrics",
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                        "regex": str(port),
                        "action": "keep",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                    {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
                    {
                        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                        "target_label": "app",
                    },
                ],
            }
        )
    config = {
        "global": {
            "scrape_interval": f"{interval_seconds}s",
            "scrape_timeout": f"{min(interval_seconds, SCRAPE_TIMEOUT_SECONDS)}s",
        },
        "scrape_configs": jobs,
    }
    return yaml.safe_dump(config, sort_keys=False)
