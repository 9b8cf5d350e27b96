"""Core activities of the pipeline engine: no-op echo, outbound HTTP, and loading named definitions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.bounded import RemoteDataError, loads_strict
from activities.liveness import keep_alive
from activities.secrets import resolve_secret
from definitions.core_steps import EchoArgs, HttpArgs, HttpResult
from definitions.library import PipelineLibrary
from definitions.validate import DefinitionError

#: Statuses a later attempt may turn into success; every other unexpected status is final.
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("Retry-After", "")
    if value.isdigit():
        return timedelta(seconds=min(int(value), 600))
    return None


class CoreActivities:
    """Activities of the `pipeline` queue. One instance per worker; holds nothing secret."""

    def __init__(self, library: PipelineLibrary | None = None) -> None:
        self.library = library or PipelineLibrary()

    def all(self) -> list[Callable[..., Any]]:
        return [self.echo, self.http, self.load_definition, self.await_workflow]

    def close(self) -> None:
        return None

    @activity.defn(name="core.echo")
    async def echo(self, args: EchoArgs) -> dict[str, Any]:
        if args.sleep:
            # The heartbeat carries the sleep still to do: an attempt after a crash or a worker
            # shutdown sleeps only the rest (progress survives, like a copy resuming at its offset).
            total = args.sleep.total_seconds()
            details = activity.info().heartbeat_details
            if details and isinstance(details[-1], (int, float)):
                total = min(total, float(details[-1]))
            deadline = time.monotonic() + total
            while (left := deadline - time.monotonic()) > 0:
                activity.heartbeat(round(left, 3))
                await asyncio.sleep(min(left, 1.0))
        return args.values

    @activity.defn(name="core.http")
    async def http(self, args: HttpArgs) -> HttpResult:
        headers = dict(args.headers)
        for name, ref in args.secret_headers.items():
            headers[name] = resolve_secret(ref)
        verify: bool | str = args.ca_bundle or not args.insecure
        url = str(args.url)
        try:
            # A slow endpoint may take up to request_timeout: heartbeat meanwhile (heartbeat timeout 10 s).
            async with (
                keep_alive(),
                httpx.AsyncClient(verify=verify, timeout=args.request_timeout.total_seconds()) as client,
                client.stream(
                    args.method, url, headers=headers,
                    json=args.json_body if args.json_body is not None else None,
                    content=args.body.encode() if args.body is not None else None,
                ) as response,
            ):
                raw, truncated = await _read_capped(response, args.max_body_bytes)
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise ApplicationError(
                    f"TLS verification of {url} failed: {exc}. Give caBundle, or insecure: true for a lab",
                    type="TLSError", non_retryable=True) from None
            raise ApplicationError(f"cannot connect to {url}: {exc}", type="ConnectError") from None
        except httpx.TimeoutException:
            raise ApplicationError(f"{args.method} {url} timed out after {args.request_timeout}",
                                   type="Timeout") from None
        except httpx.HTTPError as exc:
            raise ApplicationError(f"{args.method} {url} failed: {exc}", type="HTTPError") from None
        text = raw.decode(errors="replace")
        if response.status_code not in args.expect_status:
            snippet = text[:300]
            raise ApplicationError(
                f"{args.method} {url} answered {response.status_code} (expected {_ranges(args.expect_status)}): "
                f"{snippet}",
                type=f"HTTP{response.status_code}",
                non_retryable=response.status_code not in RETRYABLE_STATUS,
                next_retry_delay=retry_after(response),
            )
        data = None
        if "json" in response.headers.get("content-type", "") and not truncated:
            # Strict and depth-capped: NaN, 1e400 or JSON nested 100k deep must not reach the
            # workflow (or raise RecursionError here, which Temporal would retry).
            try:
                data = loads_strict(raw, f"{args.method} {url}")
            except RemoteDataError:
                data = None
        return HttpResult(
            status=response.status_code,
            headers={k: v for k, v in response.headers.items() if k.lower() not in ("set-cookie",)},
            body=text, json_body=data, truncated=truncated,
        )

    @activity.defn(name="pipeline.await_workflow")
    async def await_workflow(self, workflow_id: str) -> Any:
        """Join a workflow that is already running (a step whose lifecycle id is taken) and return its
        result, heartbeating while it runs; follows continue-as-new."""
        handle = activity.client().get_workflow_handle(workflow_id)
        result = asyncio.ensure_future(handle.result())
        try:
            while not result.done():
                activity.heartbeat()
                await asyncio.wait([result], timeout=5)
        except asyncio.CancelledError:
            result.cancel()
            raise
        try:
            return result.result()
        except WorkflowFailureError as exc:
            cause = exc.cause
            raise ApplicationError(f"joined workflow {workflow_id} failed: {getattr(cause, 'message', cause)}",
                                   type="JoinedWorkflowFailed", non_retryable=True) from None

    @activity.defn(name="pipeline.load_definition")
    async def load_definition(self, name: str) -> dict[str, Any]:
        try:
            return self.library.load(name)
        except DefinitionError as exc:
            raise ApplicationError(str(exc), type="UnknownPipeline", non_retryable=True) from None


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether more was sent: an endless or huge answer is
    cut at the limit instead of being read into the worker's memory."""
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf.extend(chunk)
        if len(buf) > limit:
            return bytes(buf[:limit]), True
    return bytes(buf), False


def _ranges(codes: list[int]) -> str:
    if codes and codes == list(range(codes[0], codes[-1] + 1)) and len(codes) > 2:
        return f"{codes[0]}-{codes[-1]}"
    return ", ".join(map(str, codes))
