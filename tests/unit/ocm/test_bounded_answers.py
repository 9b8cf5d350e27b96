"""Issue 17, the remote reads left after the manifest caps: the OCM config blob is parsed strictly
with a depth cap, answers to HEAD/PUT/POST are read with a cap (never whole), and the transport
activities turn a RecursionError or capped remote data into a non-retryable error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.bounded import RemoteDataError
from activities.ocm.layout import RepoBase, read_version, version_tag
from activities.ocm.oci import MAX_ANSWER_BYTES, RegistryClient, RemoteDataRejected, sha256_digest
from activities.ocm.transport import _operator_errors

REPO = "component-descriptors/example.org/app"


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 65_536


async def test_an_endless_answer_to_a_manifest_put_is_refused_not_read() -> None:
    sent: list[int] = []

    async def counting() -> AsyncIterator[bytes]:
        async for chunk in _endless():
            sent.append(len(chunk))
            yield chunk

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=counting())

    async with RegistryClient("http://reg.test", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(RemoteDataRejected) as caught:
            await client.put_manifest("a/b", "1", b"{}", "application/vnd.oci.image.manifest.v1+json")
    assert caught.value.retryable is False
    assert "answer to PUT /v2/a/b/manifests/1 on reg.test" in str(caught.value)
    assert str(MAX_ANSWER_BYTES) in str(caught.value)
    assert sum(sent) <= MAX_ANSWER_BYTES + 2 * 65_536  # stopped right after the cap


async def test_a_declared_oversized_answer_is_refused_before_reading() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(202, headers={"content-length": str(10**12), "location": "/up/1"}, content=_endless())

    async with RegistryClient("http://reg.test", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(RemoteDataRejected, match="declares 1000000000000 bytes"):
            await client.start_upload("a/b")


async def test_head_reports_the_size_without_reading_a_body() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.method == "HEAD"
        return httpx.Response(200, headers={"content-length": str(50 * 1024**3)})

    async with RegistryClient("http://reg.test", transport=httpx.MockTransport(handler)) as client:
        assert await client.blob_size("a/b", "sha256:" + "0" * 64) == 50 * 1024**3


def _registry_with_config(config: bytes) -> httpx.MockTransport:
    config_digest = sha256_digest(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": "application/json", "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/x-tar", "digest": "sha256:" + "1" * 64, "size": 1}],
        }
    ).encode()

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == f"/v2/{REPO}/manifests/{version_tag('1.0.0')}":
            return httpx.Response(
                200, content=manifest, headers={"content-type": "application/vnd.oci.image.manifest.v1+json"}
            )
        if req.url.path == f"/v2/{REPO}/blobs/{config_digest}":
            return httpx.Response(200, content=config)
        return httpx.Response(404)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than 64"),
        (b'{"componentDescriptorLayer": NaN}', "NaN is not a JSON number"),
        (b'{"componentDescriptorLayer": {"digest": 1e400}}', "overflows"),
    ],
)
async def test_config_blob_is_parsed_strictly_with_a_depth_cap(config: bytes, expected: str) -> None:
    async with RegistryClient("http://reg.test", transport=_registry_with_config(config)) as client:
        with pytest.raises(RemoteDataRejected) as caught:
            await read_version(client, RepoBase.parse("http://reg.test"), "example.org/app", "1.0.0")
    assert expected in str(caught.value) and "config blob of reg.test/" in str(caught.value)
    assert caught.value.retryable is False


async def test_transport_activities_turn_recursion_and_capped_data_into_non_retryable_errors() -> None:
    @_operator_errors
    async def walks_too_deep() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    @_operator_errors
    async def reads_too_much() -> None:
        raise RemoteDataError("index reg.test/a:1: more than 4194304 bytes")

    with pytest.raises(ApplicationError) as caught:
        await walks_too_deep()
    assert caught.value.non_retryable and caught.value.type == "RemoteDataRejected"
    assert "walks_too_deep" in str(caught.value) and "nested too deep" in str(caught.value)
    with pytest.raises(ApplicationError) as caught:
        await reads_too_much()
    assert caught.value.non_retryable and "index reg.test/a:1" in str(caught.value)
