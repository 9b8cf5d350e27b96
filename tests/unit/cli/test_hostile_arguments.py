"""No `apeiro` command ends in a traceback, whatever its arguments: every command (enumerated from the
argparse parser) gets empty, binary, missing, directory, huge and deeply nested files for each of its
file-like arguments and must exit non-zero... or zero, with at most one line of error and no
"Traceback". Temporal is an address where nothing listens, so nothing is started anywhere."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from landscape.process import free_port
from workers.cli import build_parser, main

#: Commands that start processes which outlive the call (the landscape, workers, servers): a missing
#: or empty directory is a valid state directory for them, so they are left out here.
LONG_RUNNING = {("dev", "up"), ("demo",), ("worker",), ("codec", "serve")}
#: Options that name files (or directories) a command reads or writes.
FILE_HINTS = ("file", "config", "key", "cert", "svg", "output", "blobs", "ca", "profile", "bundle", "state")
FILLER = {"--step": "s", "--as": "me", "--reason": "r", "--key-ref": "env:I17_KEY", "--bmc": "http://127.0.0.1:9"}


def commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*prefix, name))
            return
    yield prefix, parser


def hostile_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "empty": root / "empty.yaml",
        "binary": root / "binary.yaml",
        "huge": root / "huge.yaml",
        "nested": root / "nested.yaml",
        "nested-json": root / "nested.json",
    }
    files["empty"].write_bytes(b"")
    files["binary"].write_bytes(bytes(range(256)) * 8 + b"\xff\xfe\x00")
    files["huge"].write_bytes(b"a: " + b"x" * (512 * 1024) + b"\n")
    files["nested"].write_bytes(b"[" * 1_500 + b"]" * 1_500)
    files["nested-json"].write_bytes(b'{"component": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001)
    files["missing"] = root / "no" / "such.yaml"
    files["directory"] = root
    return files


def argv_for(cmd: tuple[str, ...], parser: argparse.ArgumentParser, value: str) -> list[str]:
    argv = list(cmd)
    for action in parser._actions:
        if action.dest == "help" or action.nargs == 0:
            continue
        if not action.option_strings:
            argv.append(value)
            continue
        flag = action.option_strings[-1]
        if any(h in flag for h in FILE_HINTS):
            argv += [flag, value]
        elif action.required:
            argv += [flag, FILLER.get(flag, value)]
    return argv


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusing an argument: a usage line, exit 2
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


async def _refused(*args: object, **kwargs: object) -> None:
    raise RuntimeError("Failed client connect: Connection refused (test)")


@pytest.fixture(autouse=True)
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # What connecting to an address where nothing listens raises, without the client's retry delay.
    monkeypatch.setattr("temporalio.client.Client.connect", _refused)
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("APEIRO_DEFINITIONS", str(tmp_path / "defs"))
    monkeypatch.setenv("I17_KEY", "k")
    monkeypatch.chdir(tmp_path)


ALL = [c for c, _ in commands(build_parser()) if c not in LONG_RUNNING]


@pytest.mark.parametrize("cmd", ALL, ids=[" ".join(c) for c in ALL])
def test_every_command_with_hostile_files(cmd: tuple[str, ...], tmp_path: Path) -> None:
    parser = dict(commands(build_parser()))[cmd]
    files = hostile_files(tmp_path / "in")
    takes_values = [a for a in parser._actions if a.dest != "help" and a.nargs != 0]
    if not takes_values:
        pytest.skip("takes no arguments")
    for kind, path in files.items():
        argv = argv_for(cmd, parser, str(path))
        code, out, err = run_cli(argv)
        assert "Traceback" not in err + out, (kind, argv, err[-2000:])
        if code != 0:
            lines = [ln for ln in (err + out).splitlines() if ln.strip()]
            assert lines, (kind, argv, "failed without saying why")
            assert all(len(ln) < 2000 for ln in lines), (kind, argv, "an error line of", max(map(len, lines)))
