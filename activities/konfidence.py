"""Activities of the `konfidence` queue: Stage rollout, gate measurements, flag files, calendars.

Every external call happens here. Gate measurements return a result (ok or an error text) instead of
raising, because the gate logic in the workflow counts errors (consecutive error limit, Error vs
Failed) and Temporal retries would hide flaky metrics from that count.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from activities.konfidence_stages import deploy_stage, tls_context
from activities.secrets import resolve_secret
from definitions import queues
from definitions.promotion import (
    Calendar,
    PromotionDefinitionError,
    Window,
    coordinator_workflow_id,
    validate_promotion,
)
from definitions.promotion_runs import (
    CoordinatorState,
    FlagApply,
    FlagApplyResult,
    FlagRestore,
    NextAllowed,
    NextAllowedResult,
    ProbeRequest,
    ProbeResult,
    PromQuery,
    PromResult,
    RegisterRequest,
    TestPoll,
    TestPollResult,
    TestTrigger,
)

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
TIMEOUT = httpx.Timeout(10.0)


def _fatal(message: str, type_: str) -> ApplicationError:
    return ApplicationError(message, type=type_, non_retryable=True)


# --- validation and coordinator -------------------------------------------------------------------


@activity.defn(name="konfidence.validate")
async def validate(request: dict[str, Any]) -> None:
    """The PromQL check the workflow sandbox cannot run (runs first, before any ring).

    Takes the request as plain JSON: decoding it into the model would run the same checks and fail
    as an unreadable "Failed decoding arguments" instead of naming the path.
    """
    try:
        validate_promotion(request.get("promotion"))
    except PromotionDefinitionError as exc:
        problems = "; ".join(f"{p}: {m}" for p, m in exc.problems)
        raise _fatal(f"invalid promotion: {problems}", "PromotionInvalid") from None


@activity.defn(name="konfidence.register")
async def register(request: RegisterRequest) -> None:
    """Signal-with-start the pipeline's coordinator (it answers with the `registered` signal)."""
    info = activity.info()
    pipeline = request.pipeline
    await activity.client().start_workflow(
        "PromotionCoordinatorWorkflow",
        CoordinatorState(pipeline=pipeline),
        id=coordinator_workflow_id(pipeline),
        task_queue=info.task_queue or queues.KONFIDENCE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="register",
        start_signal_args=[request],
    )


# --- gate measurements -----------------------------------------------------------------------------


def _address(value: str) -> str:
    if value.startswith(("env:", "file:", "k8s:")):
        return resolve_secret(value).strip()
    return value


@activity.defn(name="konfidence.prometheus_query")
async def prometheus_query(request: PromQuery) -> PromResult:
    """One instant query; ``value`` is the first sample (None: no data). Errors are returned, not raised."""
    try:
        url = _address(request.address).rstrip("/") + "/api/v1/query"
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=tls_context()) as client:
            resp = await client.get(url, params={"query": request.query})
        try:
            body = resp.json()
        except ValueError:
            return PromResult(ok=False, error=f"HTTP {resp.status_code} from Prometheus (not JSON)")
        if resp.status_code != 200 or body.get("status") != "success":
            return PromResult(
                ok=False, error=f"HTTP {resp.status_code}: {body.get('errorType', '')} {body.get('error', '')}".strip()
            )
        data = body.get("data") or {}
        result = data.get("result")
        if data.get("resultType") == "scalar":
            return PromResult(ok=True, value=float((result or [0, "nan"])[1]), samples=1)
        if not result:
            return PromResult(ok=True, value=None, samples=0)
        value = float(result[0]["value"][1])
        if value != value:  # NaN: e.g. 0/0 when there was no traffic
            return PromResult(ok=True, value=None, samples=len(result))
        return PromResult(ok=True, value=value, samples=len(result))
    except (httpx.HTTPError, ApplicationError) as exc:
        return PromResult(ok=False, error=f"{type(exc).__name__}: {exc}")


@activity.defn(name="konfidence.http_probe")
async def http_probe(request: ProbeRequest) -> ProbeResult:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=tls_context()) as client:
            resp = await client.get(request.url)
        body: Any
        try:
            body = resp.json()
        except ValueError:
            body = resp.text[:4096]
        return ProbeResult(ok=True, status=resp.status_code, body=body)
    except httpx.HTTPError as exc:
        return ProbeResult(ok=False, error=f"{type(exc).__name__}: {exc}")


@activity.defn(name="konfidence.trigger_tests")
async def trigger_tests(request: TestTrigger) -> None:
    payload = request.model_dump(exclude={"url"})
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=tls_context()) as client:
            resp = await client.post(request.url, json=payload)
    except httpx.HTTPError as exc:
        raise ApplicationError(f"test suite trigger {request.url}: {exc}", type="TestTriggerUnavailable") from None
    if resp.status_code >= 500:
        raise ApplicationError(f"test suite trigger answered {resp.status_code}", type="TestTriggerUnavailable")
    if resp.status_code >= 400:
        raise _fatal(f"test suite trigger {request.url} refused: {resp.status_code} {resp.text[:200]}", "TestTrigger")


@activity.defn(name="konfidence.poll_tests")
async def poll_tests(request: TestPoll) -> TestPollResult:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=tls_context()) as client:
            resp = await client.get(request.url)
        body = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        return TestPollResult(finished=False, detail=f"poll failed: {exc}")
    if not isinstance(body, dict) or "passed" not in body:
        return TestPollResult(finished=False, detail="running")
    return TestPollResult(finished=True, passed=bool(body["passed"]), detail=str(body.get("detail", "")))


# --- calendars ------------------------------------------------------------------------------------


def _in_window(local: datetime, window: Window, zone: ZoneInfo) -> bool:
    if window.from_ and local < window.from_.astimezone(zone):
        return False
    if window.until and local >= window.until.astimezone(zone):
        return False
    sh, sm = map(int, window.start.split(":"))
    eh, em = map(int, window.end.split(":"))
    start, end = sh * 60 + sm, eh * 60 + em
    minute = local.hour * 60 + local.minute
    days = window.days
    if start == end:  # all day
        return not days or _weekday(local) in days
    if start < end:
        return start <= minute < end and (not days or _weekday(local) in days)
    # crosses midnight: the part after midnight belongs to the previous day's window
    if minute >= start:
        return not days or _weekday(local) in days
    if minute < end:
        return not days or _weekday(local - timedelta(days=1)) in days
    return False


def _weekday(local: datetime) -> str:
    return ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[local.weekday()]


def allowed(calendar: Calendar, instant: datetime) -> tuple[bool, str]:
    """Whether an instant is allowed, and why not."""
    try:
        zone = ZoneInfo(calendar.time_zone)
    except ZoneInfoNotFoundError:
        raise _fatal(f"unknown time zone {calendar.time_zone!r}", "CalendarInvalid") from None
    local = instant.astimezone(zone)
    for w in calendar.deny:
        if _in_window(local, w, zone):
            return False, f"deny window {w.note or w.start + '-' + w.end} in force"
    if calendar.allow and not any(_in_window(local, w, zone) for w in calendar.allow):
        return False, "outside every allow window"
    return True, ""


def next_allowed_instant(calendar: Calendar, after: datetime, horizon_days: int = 400) -> tuple[datetime, str]:
    """The first allowed minute at or after ``after`` (minute resolution, jumping over closed stretches)."""
    ok, why = allowed(calendar, after)
    if ok:
        return after, ""
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = after + timedelta(days=horizon_days)
    step = timedelta(minutes=1)
    while t < end:
        if allowed(calendar, t)[0]:
            return t, why
        # candidate instants are window edges; walking minute by minute over a year is ~500k checks,
        # so stride by 15 min and walk back to the exact minute once allowed.
        nxt = t + timedelta(minutes=15)
        if allowed(calendar, nxt)[0]:
            while not allowed(calendar, t)[0]:
                t += step
            return t, why
        t = nxt
    raise _fatal(f"the calendar allows no instant in the next {horizon_days} days", "CalendarClosed")


@activity.defn(name="konfidence.next_allowed")
async def next_allowed(request: NextAllowed) -> NextAllowedResult:
    at, why = next_allowed_instant(request.calendar, request.after.astimezone(UTC))
    return NextAllowedResult(at=at, reason=why)


# --- feature flags (flagd flag file) --------------------------------------------------------------


def _read_flags(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise _fatal(f"flagd file {path} is not readable JSON: {exc}", "FlagFileInvalid") from None
    if not isinstance(data, dict):
        raise _fatal(f"flagd file {path} is not a JSON object", "FlagFileInvalid")
    return data


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    """flagd watches the file: write a sibling and rename, so it never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


@activity.defn(name="konfidence.apply_flags")
async def apply_flags(request: FlagApply) -> FlagApplyResult:
    """Set each action's flag in the ring's flagd file; returns the file as it was (for the revert)."""
    path = Path(request.flags.path)
    before = _read_flags(path)
    data: dict[str, Any] = (
        json.loads(json.dumps(before)) if before is not None else {"$schema": FLAGD_SCHEMA, "flags": {}}
    )
    flags: dict[str, Any] = data.setdefault("flags", {})
    changed = []
    for action in request.flags.actions:
        flag = flags.get(action.flag) or {}
        variants = action.variants if action.variants is not None else flag.get("variants")
        if not variants or action.default_variant not in variants:
            raise _fatal(
                f"flag {action.flag!r} in {path} has no variant {action.default_variant!r}; give variants",
                "FlagActionInvalid",
            )
        new = {
            **flag,
            "state": action.state,
            "variants": variants,
            "defaultVariant": action.default_variant,
            "metadata": {**(flag.get("metadata") or {}), "apeiroRing": request.ring, "apeiroVersion": request.version},
        }
        if new != flag:
            changed.append(action.flag)
        flags[action.flag] = new
    if changed:
        _write_atomic(path, data)
    return FlagApplyResult(path=str(path), before=before, changed=changed)


@activity.defn(name="konfidence.restore_flags")
async def restore_flags(request: FlagRestore) -> None:
    path = Path(request.path)
    if request.before is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    _write_atomic(path, request.before)


#: The gate measurements, also registered on the ``gardener`` queue for the gates between fleet waves.
GATE_ACTIVITIES: list[Callable[..., Any]] = [prometheus_query, http_probe, next_allowed]

ACTIVITIES: list[Callable[..., Any]] = [
    validate,
    register,
    deploy_stage,
    prometheus_query,
    http_probe,
    trigger_tests,
    poll_tests,
    next_allowed,
    apply_flags,
    restore_flags,
]
