"""The worker's event loop choice (workers/eventloop.py): uvloop by default, asyncio on request, a clear
error (exit 2, no traceback) for anything else, in every command that starts a long-running server."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
import uvloop

from tests.triggers_support import write_minimal_gateway
from workers import eventloop
from workers.cli import main
from workers.config import ConfigError


def test_default_is_uvloop_and_asyncio_on_request() -> None:
    assert eventloop.loop_name({}) == "uvloop"
    assert eventloop.loop_name({"APEIRO_EVENT_LOOP": " AsyncIO "}) == "asyncio"
    assert eventloop.loop_factory({"APEIRO_EVENT_LOOP": "asyncio"}) is None
    assert eventloop.loop_factory({}) is uvloop.new_event_loop


@pytest.mark.parametrize(("env", "kind"), [({}, uvloop.Loop), ({"APEIRO_EVENT_LOOP": "asyncio"}, asyncio.BaseEventLoop)])
def test_run_uses_the_chosen_loop(env: dict[str, str], kind: type) -> None:
    async def which() -> asyncio.AbstractEventLoop:
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    loop = eventloop.run(which(), env)
    assert isinstance(loop, kind)
    if kind is asyncio.BaseEventLoop:
        assert not isinstance(loop, uvloop.Loop)


def test_a_typo_names_the_variable_and_never_starts_the_coroutine() -> None:
    started = False

    async def go() -> None:
        nonlocal started
        started = True

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would be a RuntimeWarning
        with pytest.raises(ConfigError, match=r"APEIRO_EVENT_LOOP must be one of uvloop, asyncio, not 'uvlop'"):
            eventloop.run(go(), {"APEIRO_EVENT_LOOP": "uvlop"})
    assert not started


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "--queues", "ocm"],
        ["console"],
        ["webhook", "serve", "--config", "{gw}"],
    ],
)
def test_commands_refuse_a_bad_loop_with_exit_2(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = write_minimal_gateway(tmp_path, monkeypatch)
    argv = [a.format(gw=gw) for a in argv]
    monkeypatch.setenv("APEIRO_EVENT_LOOP", "tokio")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: APEIRO_EVENT_LOOP must be one of uvloop, asyncio, not 'tokio'" in err
    assert "Traceback" not in err
