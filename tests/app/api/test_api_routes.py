"""Walks the real app's routes: every route except GET /health needs a valid token; /admin/* needs admin."""

from __future__ import annotations

import re

from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from app.api.deps import get_principal, require_admin
from app.api.main import create_app

PUBLIC = {("GET", "/health")}
SAMPLE_PARAMS = {
    "job_id": "0123456789abcdef",
    "document_id": "0123456789abcdef0123456789abcdef",
    "subject": "some-subject",
}


def _calls(dependant: Dependant) -> set[object]:
    found: set[object] = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _routes(app) -> list[tuple[str, str, set[object]]]:
    out = []
    for ctx in iter_route_contexts(app.routes):
        methods = ctx.methods or set()
        dependant = getattr(ctx, "dependant", None)
        for method in methods - {"HEAD", "OPTIONS"}:
            out.append((method, str(ctx.path), _calls(dependant) if dependant is not None else set()))
    return out


def test_every_route_but_health_depends_on_auth_and_admin_routes_on_the_admin_role(settings_factory) -> None:
    app = create_app(settings_factory())
    routes = _routes(app)
    assert len(routes) >= 12, routes
    paths = {(m, p) for m, p, _ in routes}
    assert {
        ("GET", "/health"),
        ("POST", "/index"),
        ("GET", "/search"),
        ("POST", "/chat"),
        ("GET", "/jobs/{job_id}"),
        ("GET", "/progress/stream/{job_id}"),
        ("DELETE", "/documents/{document_id}"),
        ("GET", "/documents/{document_id}/export"),
    } <= paths
    for method, path, calls in routes:
        if (method, path) in PUBLIC:
            assert get_principal not in calls
            continue
        assert get_principal in calls, f"{method} {path} is not protected"
        if path.startswith("/admin"):
            assert require_admin in calls, f"{method} {path} lacks the admin role check"
    # No docs/openapi routes unless explicitly enabled (they would be unauthenticated).
    assert not any(p in {"/docs", "/openapi.json", "/redoc"} for _, p, _ in routes)


async def test_every_protected_route_answers_401_without_a_token(api, auth) -> None:
    for method, path, _ in _routes(api.app):
        if (method, path) in PUBLIC:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMS[m.group(1)], path)
        response = await api.client.request(method, url)
        assert response.status_code == 401, f"{method} {url}: {response.status_code}"
        if path.startswith("/admin"):
            response = await api.client.request(method, url, headers=auth("plain-user"))
            assert response.status_code == 403, f"{method} {url} as non-admin: {response.status_code}"
    health = await api.client.get("/health")
    assert health.status_code in (200, 503)
