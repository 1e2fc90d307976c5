"""The published schema declares what the routes answer (the frontend's generated client relies on it)."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.main import create_app
from app.api.responses import PROTECTED_STATUSES, error_responses

ERROR_REF = "#/components/schemas/ApiError"


@pytest.fixture
def schema(settings_factory: Any) -> dict[str, Any]:
    return create_app(settings_factory(max_upload_files=4)).openapi()


def _error_ref(operation: dict[str, Any], status: int) -> str | None:
    response = operation["responses"].get(str(status))
    if response is None:
        return None
    return response["content"]["application/json"]["schema"].get("$ref")


def test_every_protected_operation_declares_auth_limit_and_outage_errors(schema: dict[str, Any]) -> None:
    operations = [(path, method, op) for path, methods in schema["paths"].items() for method, op in methods.items()]
    assert len(operations) >= 16
    for path, method, op in operations:
        if path == "/health":
            continue
        for status in PROTECTED_STATUSES:
            assert _error_ref(op, status) == ERROR_REF, (method, path, status)
        assert "Retry-After" in op["responses"]["429"]["headers"], (method, path)
        if path.startswith("/admin/"):
            assert _error_ref(op, 403) == ERROR_REF, (method, path)


def test_upload_body_declares_one_to_max_upload_files(schema: dict[str, Any]) -> None:
    op = schema["paths"]["/index"]["post"]
    files = op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["files"]
    assert (files["minItems"], files["maxItems"]) == (1, 4)
    for status in (400, 413, 415, 422):
        assert _error_ref(op, status) == ERROR_REF, status


async def test_audit_day_accepts_only_the_declared_date_format(api: Any, issuer: Any) -> None:
    headers = {"Authorization": f"Bearer {issuer.mint('auditor', ['admin'])}"}
    for bad in ("0", "20261205", "2026-13-01"):
        response = await api.client.get("/admin/audit", params={"day": bad}, headers=headers)
        assert response.status_code == 422, (bad, response.text)
    assert (await api.client.get("/admin/audit", params={"day": "2026-12-05"}, headers=headers)).status_code == 200


async def test_chat_body_types_are_strict(api: Any, issuer: Any) -> None:
    headers = {"Authorization": f"Bearer {issuer.mint('chatter')}"}
    for body in ({"message": "q", "ai_enabled": 0}, {"message": "q", "k": "5"}):
        response = await api.client.post("/chat", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)


async def test_method_not_allowed_lists_every_method_of_the_resource(api: Any, issuer: Any) -> None:
    response = await api.client.request("PUT", "/documents/" + "0" * 32)
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="no declared meaning for status"):
        error_responses(418)
