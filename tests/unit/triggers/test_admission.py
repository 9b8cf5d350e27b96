"""The admission limit: deliveries beyond the bound get 503 + Retry-After at once, without their body
being read; admitted ones finish; health and metrics are never shed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.triggers_support import write_minimal_gateway
from triggers.admission import AdmissionConfigError, AdmissionLimit, from_env


class Slow:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.two_inside = asyncio.Event()
        self.bodies_read = 0

    async def hook(self, request: Request) -> JSONResponse:
        await request.body()
        self.bodies_read += 1
        if self.bodies_read == 2:
            self.two_inside.set()
        await self.release.wait()
        return JSONResponse({"accepted": True}, status_code=202)

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})


def _client(slow: Slow, limit: int, shed: list[str]) -> tuple[httpx.AsyncClient, AdmissionLimit]:
    app = Starlette(routes=[Route("/hooks/x", slow.hook, methods=["POST"]), Route("/healthz", slow.health)])
    guarded = AdmissionLimit(app, max_in_flight=limit, retry_after=2, on_shed=shed.append)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://gw"), guarded


async def test_beyond_the_bound_answers_503_with_retry_after_at_once() -> None:
    slow, shed = Slow(), list[str]()
    client, guard = _client(slow, 2, shed)
    async with client:
        admitted = [asyncio.create_task(client.post("/hooks/x", content=b"{}")) for _ in range(2)]
        await asyncio.wait_for(slow.two_inside.wait(), timeout=5)
        extra = await asyncio.wait_for(client.post("/hooks/x", content=b"{}"), timeout=2)
        assert extra.status_code == 503 and extra.headers["retry-after"] == "2"
        assert extra.json()["accepted"] is False and "send it again" in extra.json()["error"]
        assert (await client.get("/healthz")).status_code == 200, "health is never shed"
        assert slow.bodies_read == 2, "a shed delivery's body is never read"
        slow.release.set()
        assert [r.status_code for r in await asyncio.gather(*admitted)] == [202, 202]
        assert (await client.post("/hooks/x", content=b"{}")).status_code == 202, "room again once they finish"
    assert shed == ["/hooks/x"] and guard.shed == 1 and guard.peak == 2 and guard.in_flight == 0


async def test_in_flight_is_released_when_the_app_fails() -> None:
    async def boom(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("handler crashed")

    guard = AdmissionLimit(boom, max_in_flight=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://gw") as client:
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await client.post("/hooks/x", content=b"{}")
    assert guard.in_flight == 0 and guard.shed == 0


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        AdmissionLimit(lambda *a: None, max_in_flight=0)  # type: ignore[arg-type]


class SerialTemporal:
    """A fake Temporal that starts one workflow at a time, ``service`` s each: a delivery's wait grows
    with the deliveries ahead of it, as a saturated dev server's does."""

    def __init__(self, service: float) -> None:
        self.service = service
        self.lock = asyncio.Lock()
        self.started = 0

    async def hook(self, request: Request) -> JSONResponse:
        await request.body()
        async with self.lock:
            await asyncio.sleep(self.service)
            self.started += 1
        return JSONResponse({"accepted": True}, status_code=202)


async def _flood(target_latency: float, count: int = 500, interval: float = 0.002) -> tuple[list[float], int, int]:
    """Open-loop flood of ``count`` deliveries; (latencies of those accepted after the first 0.4 s, all
    started, answers other than 202 or 503 with Retry-After)."""
    temporal = SerialTemporal(service=0.01)
    app = Starlette(routes=[Route("/hooks/x", temporal.hook, methods=["POST"])])
    guard = AdmissionLimit(app, max_in_flight=64, min_in_flight=2, target_latency=target_latency)
    latencies: list[float] = []
    bad_503 = 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://gw") as client:

        async def deliver() -> None:
            nonlocal bad_503
            t = time.monotonic()
            r = await client.post("/hooks/x", content=b"{}")
            if r.status_code == 202:
                if t - t0 > 0.4:  # once the limit had time to adapt
                    latencies.append(time.monotonic() - t)
            elif r.status_code != 503 or r.headers.get("retry-after") != "1" or "send it again" not in r.text:
                bad_503 += 1

        tasks = []
        t0 = time.monotonic()
        for _ in range(count):
            tasks.append(asyncio.create_task(deliver()))
            await asyncio.sleep(interval)
        await asyncio.gather(*tasks)
    assert guard.in_flight == 0
    return latencies, temporal.started, bad_503


async def test_a_flood_against_a_slow_temporal_is_shed_fast_and_accepted_ones_wait_near_the_target() -> None:
    fixed, fixed_started, _ = await _flood(target_latency=0.0)
    adaptive, started, bad = await _flood(target_latency=0.1)
    assert bad == 0, "every answer is 202 or 503 with Retry-After and a reason"
    assert started >= len(adaptive) and fixed_started >= len(fixed), "every accepted delivery was started"
    fixed_p90 = sorted(fixed)[int(0.9 * len(fixed))]
    adaptive_p90 = sorted(adaptive)[int(0.9 * len(adaptive))]
    # 64 in flight x 10 ms each: a fixed bound lets accepted deliveries queue ~0.6 s behind each other.
    assert fixed_p90 > 0.4, fixed_p90
    assert adaptive_p90 < 0.3, f"adaptive p90 {adaptive_p90:.3f} s (fixed {fixed_p90:.3f} s)"
    assert started >= 0.5 * fixed_started, "the adaptive limit still admits about what Temporal can start"


def test_the_limit_shrinks_on_slow_deliveries_once_per_window_and_grows_back() -> None:
    now = [0.0]
    changes: list[int] = []
    guard = AdmissionLimit(
        lambda *a: None,  # type: ignore[arg-type]
        max_in_flight=64,
        min_in_flight=4,
        target_latency=1.0,
        on_limit=changes.append,
        clock=lambda: now[0],
    )
    guard._adapt(1.2)
    assert guard.limit == 48, "a little slow: a quarter off"
    guard._adapt(2.0)
    assert guard.limit == 48, "deliveries slowed by the same burst are one signal"
    now[0] += 1.0
    guard._adapt(10.0)
    assert guard.limit == 24, "much slower: halved at once"
    for _ in range(10):
        now[0] += 1.0
        guard._adapt(2.0)
    assert guard.limit == 4, "never below min_in_flight"
    for _ in range(3000):
        guard._adapt(0.01)
    assert guard.limit == 64, "fast deliveries grow it back to max_in_flight"
    assert changes[0] == 48 and changes[-1] == 64


def test_settings_from_the_environment_default_and_parse() -> None:
    assert from_env({}) == {"max_in_flight": 64, "min_in_flight": 4, "target_latency": 1.0, "retry_after": 1}
    got = from_env({"APEIRO_WEBHOOK_MAX_IN_FLIGHT": " 16 ", "APEIRO_WEBHOOK_TARGET_LATENCY": "0.25"})
    assert got["max_in_flight"] == 16 and got["target_latency"] == 0.25


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("APEIRO_WEBHOOK_MAX_IN_FLIGHT", "64x", "must be a whole number >= 1, not '64x'"),
        ("APEIRO_WEBHOOK_MAX_IN_FLIGHT", "0", "must be >= 1, not '0'"),
        ("APEIRO_WEBHOOK_MIN_IN_FLIGHT", "2.5", "must be a whole number >= 1, not '2.5'"),
        ("APEIRO_WEBHOOK_TARGET_LATENCY", "1s", "must be a number >= 0, not '1s'"),
        ("APEIRO_WEBHOOK_TARGET_LATENCY", "nan", "must be >= 0, not 'nan'"),
        ("APEIRO_WEBHOOK_SHED_RETRY_AFTER", "-1", "must be >= 0, not '-1'"),
    ],
)
def test_a_bad_setting_names_its_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(AdmissionConfigError) as info:
        from_env({name: value})
    assert str(info.value) == f"{name} {says}"


def test_serve_and_openapi_exit_2_on_a_bad_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from workers.cli import main

    gw = write_minimal_gateway(tmp_path, monkeypatch)
    monkeypatch.setenv("APEIRO_WEBHOOK_TARGET_LATENCY", "1s")
    for argv in (["webhook", "serve"], ["webhook", "openapi"]):
        assert main([*argv, "--config", str(gw)]) == 2
        err = capsys.readouterr().err
        assert "error: APEIRO_WEBHOOK_TARGET_LATENCY must be a number >= 0, not '1s'" in err
        assert "Traceback" not in err
