"""The copy's background progress recorder closes at once, even right after an update."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from activities.ocm import transport
from activities.ocm.transport import ProgressRecorder


@pytest.mark.parametrize("yields", [0, 1, 2, 3])
async def test_aclose_right_after_an_update_returns(monkeypatch: pytest.MonkeyPatch, yields: int) -> None:
    """A blob whose last chunk is the closing PUT updates the recorder and closes it with nothing
    awaited in between: on Python 3.11 that cancel could be lost inside ``wait_for`` and ``aclose``
    waited for ever."""
    recorded: list[dict[str, Any]] = []

    async def record(details: dict[str, Any]) -> None:
        recorded.append(details)

    monkeypatch.setattr(transport, "record_progress", record)
    r = ProgressRecorder(keepalive=30)
    r.update({"offset": 0})
    for _ in range(yields):
        await asyncio.sleep(0)
    r.update({"offset": 1})
    t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(r.aclose(), 2)  # (a lost cancel: aclose swallows wait_for's own cancel too)
    assert asyncio.get_running_loop().time() - t0 < 1, "aclose waited for the keepalive"
