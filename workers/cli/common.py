"""Helpers shared by the CLI command groups: definitions from files, inputs, Temporal, tables."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from temporalio.client import Client

from workers.config import (
    ConfigError,
    TemporalSettings,
    connect,
    search_attributes_registered,  # noqa: F401  (re-exported)
)

T = TypeVar("T")

# Exit codes, the same for every command (docs/operations.md lists them).
EXIT_OK = 0
EXIT_FAILED = 1  # a failed run, or invalid input (a definition, a refused action)
EXIT_USAGE = 2  # bad usage or configuration (argparse, TEMPORAL_* settings, a missing extra)
EXIT_NOT_FOUND = 3  # the run id (or other named object) does not exist
EXIT_INTERRUPTED = 130  # Ctrl-C


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def rpc_fail(exc: BaseException, what: str) -> int:
    """A Temporal/config error as one line and its exit code: 3 when the run does not exist, 2 for
    configuration, 1 otherwise (an action on a run that has ended included)."""
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
        if "already completed" in exc.message:  # an update or signal to a run that has ended: a refusal
            return fail(f"{what}: refused, the run has ended ({exc.message}); nothing changed", EXIT_FAILED)
        return fail(f"{what}: not found ({exc.message})", EXIT_NOT_FOUND)
    if isinstance(exc, ConfigError):
        return fail(f"{what}: {exc}", EXIT_USAGE)
    return fail(f"{what}: {exc}")


def add_input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                        help="a pipeline input (repeatable); arrays and objects as JSON")


async def client_from_env() -> Client:
    """Connect as the TEMPORAL_* variables and temporal.toml say (:mod:`workers.config`).

    When neither names an address and the local landscape is installed, connect to the landscape
    `apeiro dev up` runs, so a laptop needs no settings.
    """
    settings = TemporalSettings.from_env()
    if not settings.address_configured:
        env = dict(os.environ)
        for key, value in _landscape_env().items():
            env.setdefault(key, value)
        settings = TemporalSettings.from_env(env)
    return await connect(settings)


def _landscape_env() -> dict[str, str]:
    """TEMPORAL_* variables of the running local landscape; {} when there is none or it is not installed."""
    from workers.landscape_loader import LandscapeNotInstalled, load

    try:
        base = load("landscape.landscape")
    except LandscapeNotInstalled:
        return {}
    env: dict[str, str] = {}
    for part in (base.read_state(base.default_state_dir()) or {}).get("parts", []):
        env.update(part.get("env", {}))
    return env


def ui_url(workflow_id: str, namespace: str = "default") -> str:
    base = os.environ.get("APEIRO_UI_URL")
    if not base:
        host = TemporalSettings.from_env().address.rsplit(":", 1)[0]
        base = f"http://{host}:8233"
    return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"


def uvicorn_log_config() -> Any:
    """uvicorn's own logging setup, or None under APEIRO_LOG_FORMAT=json so its lines go through the
    root logger's JSON formatter (:func:`workers.observability.setup_logging`)."""
    if os.environ.get("APEIRO_LOG_FORMAT", "").strip().lower() == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["ConfigError"]
