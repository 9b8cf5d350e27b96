"""The OCI client against scripted registries: Retry-After, auth, byte-exact manifests, tampering."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from activities.ocm.blobcopy import copy_blob
from activities.ocm.errors import BadCredentials, DigestMismatch, RegistryError
from activities.ocm.oci import Credentials, RegistryClient, retry_after_seconds, sha256_digest


def _client(handler: httpx.MockTransport, creds: Credentials | None = None) -> tuple[RegistryClient, list[float]]:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    c = RegistryClient("http://reg.test:5000", creds or Credentials(), transport=handler, sleep=sleep)
    return c, waits


async def test_retry_after_on_429_and_503_then_recovers() -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req.url.path)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "3"})
        if len(calls) == 2:
            return httpx.Response(503, headers={"Retry-After": "1"})
        return httpx.Response(200, headers={"content-length": "5"})

    c, waits = _client(httpx.MockTransport(handler))
    async with c:
        assert await c.blob_size("a/b", "sha256:" + "0" * 64) == 5
    assert waits == [3.0, 1.0]
    assert len(calls) == 3


async def test_persistent_503_goes_to_temporal_as_retryable() -> None:
    c, waits = _client(httpx.MockTransport(lambda req: httpx.Response(503)))
    c.max_retries = 3
    async with c:
        with pytest.raises(RegistryError) as info:
            await c.blob_size("a/b", "sha256:" + "0" * 64)
    assert info.value.retryable
    assert len(waits) == 3 and waits == sorted(waits)  # exponential without Retry-After


def test_retry_after_http_date() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 5.0) == 0.0
    assert retry_after_seconds(None, 5.0) == 5.0
    assert retry_after_seconds("7", 5.0) == 7.0


async def test_bearer_token_flow() -> None:
    seen_auth = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.host == "auth.test":
            assert req.headers["authorization"].startswith("Basic ")
            assert req.url.params["scope"] == "repository:a/b:pull"
            return httpx.Response(200, json={"token": "T0K"})
        seen_auth.append(req.headers.get("authorization"))
        if req.headers.get("authorization") != "Bearer T0K":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="http://auth.test/token",service="reg",scope="repository:a/b:pull"'
                },
            )
        return httpx.Response(200, headers={"content-length": "1"})

    c, _ = _client(httpx.MockTransport(handler), Credentials("u", "p"))
    async with c:
        assert await c.blob_size("a/b", "sha256:" + "1" * 64) == 1
        assert await c.blob_size("a/b", "sha256:" + "2" * 64) == 1  # token reused
    assert seen_auth == [None, "Bearer T0K", "Bearer T0K"]


async def test_bad_credentials_are_not_retried() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    c, waits = _client(httpx.MockTransport(handler), Credentials("u", "wrong"))
    async with c:
        with pytest.raises(BadCredentials, match="rejected the credentials"):
            await c.blob_size("a/b", "sha256:" + "1" * 64)
    anonymous, _ = _client(httpx.MockTransport(handler))
    async with anonymous:
        with pytest.raises(BadCredentials, match="none configured"):
            await anonymous.blob_size("a/b", "sha256:" + "1" * 64)
    assert waits == []


async def test_manifest_bytes_are_exact_and_checked() -> None:
    body = b'{\n  "schemaVersion": 2,  "layers": []\n}'  # odd formatting on purpose
    digest = sha256_digest(body)

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/vnd.oci.image.manifest.v1+json"})

    c, _ = _client(httpx.MockTransport(handler))
    async with c:
        data, media, d = await c.get_manifest("a/b", "v1")
        assert data == body and d == digest and media.endswith("manifest.v1+json")
        with pytest.raises(DigestMismatch):
            await c.get_manifest("a/b", "sha256:" + "f" * 64)


@pytest.mark.parametrize("put_last", [True, False])
async def test_tampered_blob_stream_is_rejected_before_commit(put_last: bool) -> None:
    """The source serves bytes that do not match the digest: the upload is cancelled, not committed.
    With ``put_last`` the last chunk is the closing PUT's body: the registry verifies the digest and
    refuses it (DIGEST_INVALID), and our own hash names the source as the culprit."""
    good = b"x" * 300_000
    digest = "sha256:" + hashlib.sha256(good).hexdigest()
    events = []

    def handler(req: httpx.Request) -> httpx.Response:
        path, m = req.url.path, req.method
        events.append(f"{m} {path}")
        if m == "HEAD":
            return httpx.Response(404)
        if m == "GET" and "/blobs/sha256:" in path:
            return httpx.Response(200, content=b"y" * 300_000)
        if m == "POST":
            return httpx.Response(202, headers={"Location": "/v2/t/blobs/uploads/u1"})
        if m == "PATCH":
            return httpx.Response(
                202, headers={"Location": "/v2/t/blobs/uploads/u1", "Range": f"0-{len(req.content) - 1}"}
            )
        if m == "DELETE":
            return httpx.Response(204)
        if m == "PUT" and put_last:  # a registry checks the body against ?digest= before it commits
            assert req.content == b"y" * (300_000 - 4 * 64 * 1024)
            return httpx.Response(400, content=b'{"errors": [{"code": "DIGEST_INVALID"}]}')
        return httpx.Response(500, content=json.dumps({"unexpected": f"{m} {path}"}).encode())

    src, _ = _client(httpx.MockTransport(handler))
    dst, _ = _client(httpx.MockTransport(handler))
    dst.base_url = "http://other.test:5000"
    async with src, dst:
        with pytest.raises(DigestMismatch, match="tampered or corrupt"):
            await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * 1024, put_last=put_last)
    assert any(e.startswith("DELETE") for e in events)
    assert sum(e.startswith("PUT") for e in events) == (1 if put_last else 0)


async def test_basic_auth_is_sent_up_front_once_the_registry_asked_for_it() -> None:
    """One 401 per process and registry, not one per client and scope: every activity opens clients."""
    seen: list[tuple[str, str | None]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        auth = req.headers.get("authorization")
        seen.append((req.method, auth))
        if auth != "Basic dTpw":  # u:p
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if req.method == "POST":
            return httpx.Response(202, headers={"location": "/v2/a/b/blobs/uploads/1"})
        return httpx.Response(200, headers={"content-length": "1"})

    c, _ = _client(httpx.MockTransport(handler), Credentials("u", "p"))
    async with c:
        assert await c.blob_size("a/b", "sha256:" + "1" * 64) == 1  # pull scope: challenged once
        await c.start_upload("x/y")  # another repository and the push scope: basic already sent
    assert seen == [("HEAD", None), ("HEAD", "Basic dTpw"), ("POST", "Basic dTpw")]
    seen.clear()
    c2, _ = _client(httpx.MockTransport(handler), Credentials("u", "p"))
    async with c2:  # the next client (the next activity) of this process
        assert await c2.blob_size("a/b", "sha256:" + "2" * 64) == 1
    assert seen == [("HEAD", "Basic dTpw")]
    seen.clear()
    other, _ = _client(httpx.MockTransport(handler), Credentials("v", "p"))
    async with other:  # another user: not sent before the registry asks
        with pytest.raises(BadCredentials):
            await other.blob_size("a/b", "sha256:" + "2" * 64)
    assert seen[0] == ("HEAD", None)


async def test_a_registry_that_switches_to_tokens_gets_no_basic_up_front_any_more() -> None:
    mode = {"basic": True}
    seen: list[str | None] = []

    def handler(req: httpx.Request) -> httpx.Response:
        auth = req.headers.get("authorization")
        if req.url.path == "/token":
            return httpx.Response(200, json={"token": "T0K"})
        seen.append(auth)
        if mode["basic"]:
            ok = auth == "Basic dTpw"
            challenge = 'Basic realm="r"'
        else:
            ok = auth == "Bearer T0K"
            challenge = 'Bearer realm="http://reg.test:5000/token",service="reg"'
        if not ok:
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, headers={"content-length": "1"})

    c, _ = _client(httpx.MockTransport(handler), Credentials("u", "p"))
    async with c:
        await c.blob_size("a/b", "sha256:" + "1" * 64)
    mode["basic"] = False
    seen.clear()
    c2, _ = _client(httpx.MockTransport(handler), Credentials("u", "p"))
    async with c2:
        assert await c2.blob_size("a/b", "sha256:" + "1" * 64) == 1
    assert seen == ["Basic dTpw", "Bearer T0K"]
    seen.clear()
    c3, _ = _client(httpx.MockTransport(handler), Credentials("u", "p"))
    async with c3:
        assert await c3.blob_size("a/b", "sha256:" + "1" * 64) == 1
    assert seen == [None, "Bearer T0K"]
