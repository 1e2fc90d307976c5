"""The api's upload limits, one owner: what the api pods are told (pod_env.api_env) and what their /tmp is sized for.

`POST /index` streams up to MAX_UPLOAD_FILES x MAX_UPLOAD_MB of file data into a private temp dir under /tmp
(app/api/uploads.py), and each gunicorn worker runs at most UPLOAD_MAX_CONCURRENT of them at once (one more is
refused with 503 + Retry-After before its body is read: app/api/upload_slots.py). /tmp is an emptyDir, and a pod
that writes past an emptyDir's sizeLimit is evicted by the kubelet with every in-flight request (kubernetes PR
#45686, "emptyDir usage exceeds the limit"; kubernetes.io/docs/concepts/storage/volumes/#emptydir). So the api's
/tmp is sized from the same numbers the pods get, GUNICORN_WORKERS included (`api_tmp_size`), and the api
container requests that much ephemeral storage, so the scheduler only places it on a node with the disk
(kubernetes.io/docs/concepts/configuration/manage-resources-containers/#local-ephemeral-storage: the scheduler
sums ephemeral-storage requests against the node's allocatable, and disk-backed emptyDirs count as pod usage).

Also read by: clamav.py (clamd's StreamMaxLength / MaxFileSize >= MAX_UPLOAD_MB, so clamd never cuts an accepted
file short) and, through the recorded pod env, the WAF upload exemption's size contract (tests/infra/test_waf.py).
"""

from __future__ import annotations

# Per-file cap, MiB (the app's MAX_UPLOAD_MB: 413 as soon as a file passes it).
MAX_UPLOAD_MB = 50
# Files per POST /index (MAX_UPLOAD_FILES: 413 for one more).
MAX_UPLOAD_FILES = 10
# Uploads one gunicorn worker spools at once (UPLOAD_MAX_CONCURRENT).
UPLOAD_MAX_CONCURRENT = 2
# The api pod's gunicorn worker processes (GUNICORN_WORKERS): set here, not left to the app default, because it
# multiplies the disk every other number above asks for.
GUNICORN_WORKERS = 2
# What else lives in /tmp: the Prometheus multiprocess files (PROMETHEUS_MULTIPROC_DIR), Python's own temp files.
# The size every other pod's /tmp has (container.TMP_SIZE).
TMP_HEADROOM_MIB = 256
# The container's own logs count as its ephemeral storage too (kubelet containerLogMaxSize 10Mi x
# containerLogMaxFiles 5 by default); its root filesystem is read-only, so it writes nothing else.
LOG_HEADROOM_MIB = 64


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"uploads.{name}: must be >= 1 (got {value})")


def upload_spool_mib(
    *,
    workers: int = GUNICORN_WORKERS,
    concurrent: int = UPLOAD_MAX_CONCURRENT,
    files: int = MAX_UPLOAD_FILES,
    mb: int = MAX_UPLOAD_MB,
) -> int:
    """The most file data one api pod can have in /tmp at once: every worker's every slot holding a full upload
    (only file bytes are written, never more than the per-file cap: app/api/uploads.py _Collector)."""
    _positive(workers=workers, concurrent=concurrent, files=files, mb=mb)
    return workers * concurrent * files * mb


def api_tmp_mib(**limits: int) -> int:
    return upload_spool_mib(**limits) + TMP_HEADROOM_MIB


def api_tmp_size(**limits: int) -> str:
    """The api pod's /tmp emptyDir sizeLimit (a Kubernetes quantity)."""
    return f"{api_tmp_mib(**limits)}Mi"


def api_ephemeral_storage_request(**limits: int) -> str:
    """The api container's ephemeral-storage request: its /tmp plus its logs."""
    return f"{api_tmp_mib(**limits) + LOG_HEADROOM_MIB}Mi"


def upload_env() -> dict[str, str]:
    """The api's (and its canary's) upload settings, in every stack (app/api/settings.py names)."""
    return {
        "MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "MAX_UPLOAD_FILES": str(MAX_UPLOAD_FILES),
        "UPLOAD_MAX_CONCURRENT": str(UPLOAD_MAX_CONCURRENT),
        "GUNICORN_WORKERS": str(GUNICORN_WORKERS),
    }
