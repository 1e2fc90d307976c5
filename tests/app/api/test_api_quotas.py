"""Daily quotas (app/api/quotas.py) against the real Redis and SeaweedFS: search/chat per tenant, uploads per
identity (refused before anything is stored), atomic under concurrency, exported per tenant with a bounded label."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from app.api.auth import Principal
from app.api.quotas import QuotaExceeded, QuotaLimits, Quotas, TenantLabels
from app.services.jobs import QUEUE_NAME


def _usage(tenant: str, kind: str) -> float:
    return REGISTRY.get_sample_value("visionrag_tenant_usage_total", {"tenant": tenant, "kind": kind}) or 0.0


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/pdf")) for name, data in items]


async def test_search_quota_is_shared_by_a_tenant_and_separate_between_tenants(
    settings_factory, api_factory, auth
) -> None:
    settings = settings_factory(auth_tenant_claim="org.id", quota_search_per_day=2, quota_metric_max_tenants=5)
    acme = {"org": {"id": "acme"}}
    before = _usage("acme", "search")
    async with api_factory(settings) as api:
        for sub in ("a1", "a2"):  # two people, one tenant: one allowance
            assert (await api.client.get("/search?q=x", headers=auth(sub, **acme))).status_code == 200
        refused = await api.client.get("/search?q=x", headers=auth("a3", **acme))
        assert refused.status_code == 429, refused.text
        assert "search quota exceeded: 2 of 2" in refused.json()["detail"]
        assert 0 < int(refused.headers["Retry-After"]) <= 86400
        # Another tenant, and a caller whose token carries no tenant (counted as its own subject), are unaffected.
        assert (await api.client.get("/search?q=x", headers=auth("b1", org={"id": "beta"}))).status_code == 200
        assert (await api.client.get("/search?q=x", headers=auth("solo"))).status_code == 200
        assert await api.services.quotas.used("tenant:acme", "search") == 2
        assert await api.services.quotas.used("sub:solo", "search") == 1
    assert _usage("acme", "search") - before == 2


async def test_chat_quota_counts_requests_per_tenant(settings_factory, api_factory, auth) -> None:
    settings = settings_factory(auth_tenant_claim="tenant", quota_chat_per_day=1)
    body = {"message": "hi", "ai_enabled": False}
    async with api_factory(settings) as api:
        assert (await api.client.post("/chat", json=body, headers=auth("c1", tenant="t1"))).status_code == 200
        refused = await api.client.post("/chat", json=body, headers=auth("c2", tenant="t1"))
        assert refused.status_code == 429 and "chat quota" in refused.json()["detail"]


async def test_unset_quotas_count_nothing(api, auth) -> None:
    assert (await api.client.get("/search?q=x", headers=auth("free"))).status_code == 200
    assert await api.services.redis.keys("visionrag:quota:*") == []


async def test_concurrent_charges_never_pass_the_limit(settings_factory, api_factory) -> None:
    async with api_factory(settings_factory()) as api:
        quotas = Quotas(api.services.redis, QuotaLimits(chat_per_day=5))
        user = Principal(sub="racer", roles=frozenset(), scope="tenant:race")
        results = await asyncio.gather(
            *(quotas.charge_request("chat", user) for _ in range(25)), return_exceptions=True
        )
        assert sum(r is None for r in results) == 5
        assert all(isinstance(r, QuotaExceeded) for r in results if r is not None)
        assert await quotas.used("tenant:race", "chat") == 5


def test_the_tenant_label_is_bounded() -> None:
    labels = TenantLabels(max_tenants=2)
    assert [labels(s) for s in ("tenant:a", "tenant:b", "tenant:c", "tenant:a")] == ["a", "b", "_other", "a"]
    assert labels("sub:someone@example.com") == "_none"
    assert labels("tenant:" + "x" * 200) == "_invalid" and labels("tenant:a b") == "_invalid"


async def test_upload_pages_quota_refuses_before_storing_anything(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    async with api_factory(settings_factory(quota_upload_pages_per_day=3)) as api:
        ok = await api.client.post("/index", files=_files(("a.pdf", pdf_bytes(2))), headers=auth("up"))
        assert ok.status_code == 202, ok.text
        stored = seaweed_s3.object_names(s3_buckets.pages)
        audit = seaweed_s3.object_names(s3_buckets.audit)
        refused = await api.client.post("/index", files=_files(("b.pdf", pdf_bytes(2))), headers=auth("up"))
        assert refused.status_code == 429, refused.text
        assert "upload pages quota exceeded: 2 of 3 pages used today, this request needs 2" in refused.json()["detail"]
        assert refused.headers["Connection"] == "close" and int(refused.headers["Retry-After"]) > 0
        assert seaweed_s3.object_names(s3_buckets.pages) == stored
        assert seaweed_s3.object_names(s3_buckets.audit) == audit
        assert await api.services.redis.zcard(QUEUE_NAME) == 1
        assert await api.services.quotas.used("sub:up", "upload_pages") == 2  # the refused charge left no trace
        # The quota is per identity: someone else still uploads.
        assert (
            await api.client.post("/index", files=_files(("c.pdf", pdf_bytes(2))), headers=auth("other"))
        ).status_code == 202
        # One page left: it fits.
        assert (
            await api.client.post("/index", files=_files(("d.pdf", pdf_bytes(1))), headers=auth("up"))
        ).status_code == 202


async def test_upload_bytes_quota_is_all_or_nothing(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    settings = settings_factory(quota_upload_mb_per_day=1, quota_upload_pages_per_day=100)
    padded = pdf_bytes(1) + b"\n%" + b"p" * 600_000  # trailing bytes after %%EOF: still a valid PDF
    async with api_factory(settings) as api:
        refused = await api.client.post(
            "/index", files=_files(("x.pdf", padded), ("y.pdf", padded)), headers=auth("big")
        )
        assert refused.status_code == 429, refused.text
        assert "upload bytes quota exceeded" in refused.json()["detail"]
        assert seaweed_s3.object_names(s3_buckets.pages) == []
        # Neither counter moved: the pages fitted, but a charge is all or nothing.
        assert await api.services.quotas.used("sub:big", "upload_pages") == 0
        assert await api.services.quotas.used("sub:big", "upload_bytes") == 0
        assert (
            await api.client.post("/index", files=_files(("x.pdf", padded)), headers=auth("big"))
        ).status_code == 202


async def test_a_spent_quota_is_refused_before_the_body_is_read(
    settings_factory, api_factory, auth, pdf_bytes, seaweed_s3, s3_buckets
) -> None:
    async with api_factory(settings_factory(quota_upload_pages_per_day=1)) as api:
        assert (
            await api.client.post("/index", files=_files(("a.pdf", pdf_bytes(1))), headers=auth("sp"))
        ).status_code == 202
        # Not a PDF: had the body been read, this would be 415.
        refused = await api.client.post("/index", files=_files(("a.pdf", b"MZ not a pdf")), headers=auth("sp"))
        assert refused.status_code == 429, refused.text
        assert len(seaweed_s3.object_names(s3_buckets.pages)) == 2  # the first upload and its manifest only


async def test_a_failed_store_refunds_the_reservation(settings_factory, api_factory, auth, pdf_bytes) -> None:
    # SeaweedFS enforces signatures: a wrong secret makes every store fail after the quota was reserved.
    settings = settings_factory(quota_upload_pages_per_day=10, s3_secret_key="wrong-secret-for-this-test")
    async with api_factory(settings) as api:
        response = await api.client.post("/index", files=_files(("a.pdf", pdf_bytes(2))), headers=auth("rf"))
        assert response.status_code >= 500, response.text
        assert await api.services.quotas.used("sub:rf", "upload_pages") == 0


@pytest.mark.parametrize("field", ["quota_search_per_day", "quota_upload_mb_per_day"])
def test_quota_settings_refuse_non_positive_values(settings_factory, field: str) -> None:
    from app.core.settings import SettingsError

    with pytest.raises(SettingsError, match=field.upper()):
        settings_factory(**{field: 0})
