"""The gardener activities share one API client per kubeconfig for a while, and close what they retire."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from activities.gardener import connections as conn

KUBECONFIG_A = "clusters: [{name: a}]"
KUBECONFIG_B = "clusters: [{name: b}]"


class FakeApi:
    made = 0

    def __init__(self) -> None:
        FakeApi.made += 1
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture(autouse=True)
def fake_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    async def make(data: dict[str, Any]) -> FakeApi:
        await asyncio.sleep(0)  # a real client is made across awaits (kubeconfig loading)
        return FakeApi()

    FakeApi.made = 0
    monkeypatch.setattr(conn, "_make", make)
    monkeypatch.setattr(conn, "_shared", {})


def parse(text: str) -> dict[str, Any]:
    return {"clusters": [text]}


def shared(text: str) -> contextlib.AbstractAsyncContextManager[Any]:
    """``conn.shared_api`` handing out the fakes (typed Any: they are no ApiClient)."""
    return conn.shared_api(text, parse)


async def test_one_client_per_kubeconfig_text() -> None:
    async with shared(KUBECONFIG_A) as a1, shared(KUBECONFIG_A) as a2:
        assert a1 is a2
    async with shared(KUBECONFIG_A) as a3, shared(KUBECONFIG_B) as b:
        assert a3 is a1
        assert b is not a1  # a rotated or another garden's kubeconfig: its own client
    assert FakeApi.made == 2
    await conn.close_all()
    assert (a1.closed, b.closed) == (1, 1)


async def test_an_old_client_is_replaced_and_closed_once_its_last_user_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(conn.time, "monotonic", lambda: now[0])
    async with shared(KUBECONFIG_A) as old:
        now[0] += conn.MAX_AGE_S  # e.g. an exec plugin's token read when the client was made
        async with shared(KUBECONFIG_A) as new:
            assert new is not old
            assert old.closed == 0  # still in use by the outer activity (a long watch)
        assert new.closed == 0
    assert old.closed == 1
    await conn.close_all()
    assert new.closed == 1


async def test_activities_starting_together_keep_one_client() -> None:
    started = asyncio.Event()

    async def activity() -> Any:
        async with shared(KUBECONFIG_A) as api:
            await started.wait()
            return api

    tasks = [asyncio.ensure_future(activity()) for _ in range(5)]
    await asyncio.sleep(0.01)
    started.set()
    apis = await asyncio.gather(*tasks)
    assert len({id(a) for a in apis}) == 1
    assert FakeApi.made >= 2  # they raced to make one ...
    assert len(conn._shared) == 1  # ... the extras were closed, not kept
    await conn.close_all()


async def test_at_most_max_clients_per_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(conn.time, "monotonic", lambda: now[0])
    apis = []
    for i in range(conn.MAX_CLIENTS + 2):
        now[0] += 1
        async with shared(f"clusters: [{{name: g{i}}}]") as api:
            apis.append(api)
    assert len(conn._shared) == conn.MAX_CLIENTS
    assert [a.closed for a in apis[:2]] == [1, 1]  # the oldest were retired and closed
    assert all(a.closed == 0 for a in apis[2:])
    await conn.close_all()
    assert all(a.closed == 1 for a in apis)


async def test_a_bad_kubeconfig_makes_no_client() -> None:
    def bad(text: str) -> dict[str, Any]:
        raise ValueError("the garden kubeconfig is not a kubeconfig (no clusters)")

    with pytest.raises(ValueError, match="no clusters"):
        async with conn.shared_api("nonsense", bad):
            pass
    assert conn._shared == {}


def test_the_gardener_worker_closes_them_when_it_stops() -> None:
    from workers.queues import contents_for

    assert contents_for("gardener").close is conn.close_all


async def test_run_workers_runs_each_queues_close_hook_after_the_workers_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import worker as worker_module

    calls: list[str] = []

    async def async_close() -> None:
        calls.append("async")

    def failing_close() -> None:
        calls.append("failing")
        raise RuntimeError("already closed")

    def build(client: Any, queues: Any, *, deployment: Any = None, closers: list[Any]) -> list[Any]:
        closers += [failing_close, async_close]
        return []

    monkeypatch.setattr(worker_module, "build_workers", build)
    stop = asyncio.Event()
    stop.set()
    await worker_module.run_workers(object(), ["gardener"], stop)  # type: ignore[arg-type]
    assert calls == ["failing", "async"]  # a failing hook does not keep the next from running
