"""core.http reads at most maxBodyBytes of an answer (an endless one is cut, memory stays bounded) and
parses JSON strictly (deep nesting, NaN, 1e400 give no json outputs instead of a retried crash)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from activities.core import CoreActivities
from definitions.core_steps import HttpArgs
from tests.hostile_http import DEEP_JSON, hostile_server

BODIES = {
    "/deep": DEEP_JSON,
    "/nan": b'{"x": NaN}',
    "/huge-number": b'{"x": 1e400}',
    "/ok": b'{"x": 1}',
}


@pytest.fixture
def server() -> Iterator[str]:
    with hostile_server(BODIES.get, b"x" * 65_000) as url:
        yield url


async def test_endless_answer_is_cut_at_the_limit(server: str) -> None:
    started = time.monotonic()
    result = await CoreActivities().http(HttpArgs.model_validate({"url": f"{server}/endless", "max_body_bytes": 1000}))
    assert result.truncated and len(result.body) == 1000
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("path", ["/deep", "/nan", "/huge-number"])
async def test_hostile_json_gives_no_json_outputs(server: str, path: str) -> None:
    args = HttpArgs.model_validate({"url": f"{server}{path}", "max_body_bytes": 1_000_000})
    result = await CoreActivities().http(args)
    assert result.status == 200 and result.json_body is None


async def test_good_json_still_parses(server: str) -> None:
    result = await CoreActivities().http(HttpArgs.model_validate({"url": f"{server}/ok"}))
    assert result.json_body == {"x": 1}
