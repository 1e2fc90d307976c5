"""PageStorage against a real S3 server (SeaweedFS): SSE on write, private bucket, presigned URLs that expire."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import pytest

from app.services.storage import ObjectNotFound, PageStorage, PutItem, page_object_key, validate_key


@pytest.fixture
def storage(seaweed_s3, s3_buckets) -> PageStorage:
    return PageStorage(
        endpoint=seaweed_s3.endpoint,
        access_key=seaweed_s3.access_key,
        secret_key=seaweed_s3.secret_key,
        bucket=s3_buckets.pages,
        region=seaweed_s3.region,
        secure=False,
        sse="s3",
        presign_ttl_s=60,
    )


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


async def test_put_get_is_encrypted_at_rest(storage, seaweed_s3, s3_buckets):
    await storage.put_bytes("pages/doc1/00001.jpg", b"\xff\xd8jpeg", "image/jpeg")
    assert await storage.get_bytes("pages/doc1/00001.jpg") == b"\xff\xd8jpeg"
    stat = seaweed_s3.client().stat_object(s3_buckets.pages, "pages/doc1/00001.jpg")
    assert stat.metadata.get("X-Amz-Server-Side-Encryption") == "AES256"
    assert stat.content_type == "image/jpeg"


async def test_missing_object_is_a_clear_error(storage):
    with pytest.raises(ObjectNotFound):
        await storage.get_bytes("pages/none/00001.jpg")
    assert await storage.exists("pages/none/00001.jpg") is False


async def test_presigned_url_fetches_then_expires_and_anonymous_is_denied(storage, seaweed_s3, s3_buckets):
    await storage.put_bytes("pages/doc2/00001.jpg", b"page-one", "image/jpeg")
    url = storage.presign_get("pages/doc2/00001.jpg", ttl_s=2)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=2" in url
    assert _fetch(url) == (200, b"page-one")
    anonymous = f"http://{seaweed_s3.endpoint}/{s3_buckets.pages}/pages/doc2/00001.jpg"
    assert _fetch(anonymous)[0] == 403
    await asyncio.sleep(3)
    assert _fetch(url)[0] == 403


async def test_presign_endpoint_changes_only_the_host(seaweed_s3, s3_buckets):
    store = PageStorage(
        endpoint=seaweed_s3.endpoint,
        access_key=seaweed_s3.access_key,
        secret_key=seaweed_s3.secret_key,
        bucket=s3_buckets.pages,
        region=seaweed_s3.region,
        secure=False,
        sse="none",
        presign_endpoint="https://files.example.com",
    )
    url = store.presign_get("pages/d/00001.jpg")
    assert url.startswith(f"https://files.example.com/{s3_buckets.pages}/pages/d/00001.jpg?")


async def test_put_many_and_delete_prefix(storage):
    items = [PutItem(page_object_key("doc3", p), f"p{p}".encode(), "image/jpeg") for p in range(1, 8)]
    items.append(PutItem("pages/doc30/00001.jpg", b"other document", "image/jpeg"))
    etags = await storage.put_many(items)
    assert len(etags) == 8 and all(etags)
    assert len(await storage.list_keys("pages/doc3/")) == 7
    assert await storage.delete_prefix("pages/doc3/") == 7
    assert await storage.list_keys("pages/doc3/") == []
    # The neighbour that shares the textual prefix "pages/doc3" survives.
    assert await storage.exists("pages/doc30/00001.jpg")
    assert await storage.delete_prefix("pages/doc3/") == 0


async def test_ping_and_ensure_bucket(seaweed_s3):
    store = PageStorage(
        endpoint=seaweed_s3.endpoint,
        access_key=seaweed_s3.access_key,
        secret_key=seaweed_s3.secret_key,
        bucket="vr-ensure-" + str(int(time.time() * 1000)),
        region=seaweed_s3.region,
        secure=False,
        sse="s3",
    )
    assert await store.ping() is False
    await store.ensure_bucket()
    await store.ensure_bucket()
    assert await store.ping() is True


async def test_wrong_credentials_are_refused(seaweed_s3, s3_buckets):
    store = PageStorage(
        endpoint=seaweed_s3.endpoint,
        access_key=seaweed_s3.access_key,
        secret_key="not-the-secret",
        bucket=s3_buckets.pages,
        region=seaweed_s3.region,
        secure=False,
        sse="none",
    )
    with pytest.raises(Exception, match=r"(?i)signature|access denied|forbidden"):
        await store.put_bytes("pages/x/00001.jpg", b"x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sse": "aes"}, "sse='aes': allowed values are none, s3, kms"),
        ({"sse": "kms"}, "kms_key_id is required"),
        ({"sse": "kms", "kms_key_id": "arn:aws:kms:k", "secure": False}, "needs secure=True"),
        ({"presign_ttl_s": 86400}, "presign_ttl_s=86400"),
        ({"bucket": ""}, "bucket must not be empty"),
    ],
)
def test_bad_configuration_names_the_field(kwargs, message):
    base = {"endpoint": "127.0.0.1:9", "access_key": "a", "secret_key": "b", "bucket": "b", "secure": True}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PageStorage(**{**base, **kwargs})


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/./b", "..", "a\\b", "x\x00"])
def test_unsafe_keys_are_refused(key):
    with pytest.raises(ValueError):
        validate_key(key)


def test_page_keys_are_deterministic():
    assert page_object_key("d", 3) == "pages/d/00003.jpg"
    with pytest.raises(ValueError, match="page=0"):
        page_object_key("d", 0)
