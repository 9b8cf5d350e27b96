"""A small Kubernetes REST client for the APIExport virtual workspace (httpx, no code generation).

Why not kubernetes_asyncio: the virtual workspace URL is a path prefix per logical cluster
(`.../clusters/<name>/apis/...`), and list/watch across `clusters/*` returns objects from many
clusters; building paths ourselves is simpler than re-pointing a generated client per request.

Errors are `KubeError` with the Status code; 5xx and 429 are retried here a bounded number of times
(the controller's own loop retries the rest), 409 and 410 are left to the caller, which knows what
to re-read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from definitions.mesh import GROUP, VERSION

log = logging.getLogger(__name__)
RETRIED = frozenset({429, 500, 502, 503, 504})


class KubeError(Exception):
    def __init__(self, code: int, message: str, reason: str = "") -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


def _error(resp: httpx.Response) -> KubeError:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    return KubeError(resp.status_code, str(body.get("message") or resp.text[:300]), str(body.get("reason") or ""))


def object_path(plural: str, namespace: str | None, name: str | None = None, group: str = GROUP) -> str:
    base = f"/apis/{group}/{VERSION}" if group else "/api/v1"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


class Kube:
    """Requests against one base URL (a workspace, or a virtual workspace's `/clusters/<name>`)."""

    def __init__(self, client: httpx.AsyncClient, base: str, attempts: int = 4, backoff: float = 0.2) -> None:
        self.client = client
        self.base = base.rstrip("/")
        self.attempts = attempts
        self.backoff = backoff

    def at(self, cluster: str) -> Kube:
        """The same virtual workspace, one logical cluster (`*` for all)."""
        return Kube(self.client, f"{self.base}/clusters/{cluster}", self.attempts, self.backoff)

    async def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        for attempt in range(self.attempts):
            try:
                resp = await self.client.request(method, self.base + path, **kw)
            except httpx.TransportError as exc:
                if attempt == self.attempts - 1:
                    raise KubeError(503, f"{type(exc).__name__}: {exc}", "Unreachable") from exc
            else:
                if resp.status_code < 300:
                    return dict(resp.json())
                if resp.status_code not in RETRIED or attempt == self.attempts - 1:
                    raise _error(resp)
            await asyncio.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PUT", path, json=body)

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, json=body)

    async def watch(self, path: str, resource_version: str, timeout: int = 300) -> AsyncIterator[dict[str, Any]]:
        """Watch events from `resource_version`; ends when the server ends or cuts the stream.

        A 410 arrives as an ERROR event (kube-apiserver's way): raised as KubeError(410) so the
        caller re-lists.
        """
        params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": str(timeout)}
        try:
            async with self.client.stream("GET", self.base + path, params=params, timeout=timeout + 10) as resp:
                if resp.status_code >= 300:
                    await resp.aread()
                    raise _error(resp)
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise KubeError(int(status.get("code") or 500), str(status.get("message")), "WatchError")
                    yield event
        except (httpx.TransportError, httpx.StreamError) as exc:
            log.info("watch on %s ended: %s; re-watching", path, type(exc).__name__)
