"""Bounded reads of anything remote: a size cap on bytes and a depth and number cap on JSON.

A registry, a BMC, a webhook sender or an HTTP endpoint decides what it sends. Without caps an
endless manifest grows a worker to gigabytes and a JSON document nested 100,000 deep raises
``RecursionError`` deep inside a parser, which Temporal then retries as if it were transient. Here a
breach is a :class:`RemoteDataError` (a ``ValueError``) whose message names the source and the
limit; each caller turns it into its own answer (a non-retryable ``ApplicationError`` in activities,
a 4xx in the gateway).

What strict JSON refuses, besides depth: ``NaN``/``Infinity`` (not JSON, but Python accepts them),
numbers that overflow a float (``1e400`` becomes ``inf``), integers outside int64 (Temporal, CEL and
most peers cannot hold them; a 5,000-digit one also trips Python's int-to-str guard) and strings
with lone surrogates (valid escapes in JSON text, but not encodable as UTF-8 later).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

#: Deepest nesting of arrays/objects accepted in a remote JSON document.
MAX_JSON_DEPTH = 64
#: int64, the range Temporal payload consumers, CEL and protobuf share.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Largest manifest, index or descriptor read from a registry (the OCI distribution spec lets a
#: registry refuse manifests over 4 MiB; descriptors are YAML of a similar scale).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Largest JSON document read from a BMC (a Redfish resource is a few KiB).
MAX_BMC_BYTES = 8 * 1024 * 1024
#: Largest error body read just to quote it in a message.
MAX_ERROR_BODY = 64 * 1024

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INT_DIGITS = 20  # int64 has at most 19 digits; a longer literal is out of range without converting it


class RemoteDataError(ValueError):
    """Remote data that breaks a cap or is not strict JSON; the message names source and limit."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows a 64-bit float")
    return value


def _parse_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > _INT_DIGITS:
        raise ValueError(f"integer of {len(digits)} digits is outside the int64 range")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"integer {text} is outside the int64 range")
    return value


def check_depth_and_strings(data: Any, source: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Walk ``data`` without recursion: nesting within ``max_depth``, no lone surrogates in strings."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _LONE_SURROGATE.search(node):
                raise RemoteDataError(f"{source}: a string holds a lone UTF-16 surrogate (not valid Unicode text)")
            continue
        if isinstance(node, dict):
            children: Iterator[Any] = iter([*node.keys(), *node.values()])
        elif isinstance(node, list):
            children = iter(node)
        else:
            continue
        if depth > max_depth:
            raise RemoteDataError(f"{source}: JSON nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def loads_strict(raw: bytes | str, source: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON strictly (see the module docstring); raise :class:`RemoteDataError` naming ``source``."""
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)
    except RecursionError:
        raise RemoteDataError(f"{source}: JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise RemoteDataError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RemoteDataError(f"{source}: not valid JSON: {exc}") from None
    except ValueError as exc:  # from the number hooks
        raise RemoteDataError(f"{source}: {exc}") from None
    check_depth_and_strings(data, source, max_depth)
    return data


def too_large(source: str, limit: int) -> RemoteDataError:
    return RemoteDataError(f"{source}: more than {limit} bytes; refusing to read further (limit {limit} bytes)")


async def read_capped(chunks: AsyncIterator[bytes], limit: int, source: str) -> bytes:
    """Join ``chunks`` but stop as soon as more than ``limit`` bytes arrived."""
    buf = bytearray()
    async for chunk in chunks:
        buf.extend(chunk)
        if len(buf) > limit:
            raise too_large(source, limit)
    return bytes(buf)


async def read_response(resp: httpx.Response, limit: int, source: str) -> bytes:
    """The body of a streamed httpx response, at most ``limit`` bytes (Content-Length checked first)."""
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        await resp.aclose()
        raise RemoteDataError(f"{source}: declares {declared} bytes, over the limit of {limit} bytes")
    try:
        return await read_capped(resp.aiter_bytes(), limit, source)
    finally:
        await resp.aclose()


def read_response_sync(resp: Any, limit: int, source: str) -> bytes:
    """Same for a streamed ``requests`` response (sushy's connector uses requests)."""
    declared = resp.headers.get("content-length")
    if declared and str(declared).isdigit() and int(declared) > limit:
        resp.close()
        raise RemoteDataError(f"{source}: declares {declared} bytes, over the limit of {limit} bytes")
    buf = bytearray()
    try:
        for chunk in resp.iter_content(64 * 1024):
            buf.extend(chunk)
            if len(buf) > limit:
                raise too_large(source, limit)
    finally:
        resp.close()
    return bytes(buf)
