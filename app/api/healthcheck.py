"""Container HEALTHCHECK: is the server answering HTTP at all? (`python -m app.api.healthcheck`)

A 503 from /health means "up, but a dependency is down": the pod should leave the load balancer (readiness),
not be restarted, so only "no answer" fails this check.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("HEALTHCHECK_PORT", "8000")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4)
    except urllib.error.HTTPError:
        return 0
    except OSError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
