"""`apeiro worker` builds only its own command's parser and does not import what other commands need
(workers/cli/__init__.py ``LEAN_COMMANDS``): a worker process stays ~6 MiB smaller."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workers.cli import build_parser, lean_module


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["worker", "--queues", "ocm"], "workers.cli.worker"),
        (["-v", "worker"], "workers.cli.worker"),
        (["-o", "json", "worker"], "workers.cli.worker"),
        (["--output", "json", "worker", "--queues", "all"], "workers.cli.worker"),
        (["status", "worker"], None),  # "worker" is an argument of another command here
        (["--help"], None),
        ([], None),
    ],
)
def test_which_invocations_are_lean(argv: list[str], module: str | None) -> None:
    assert lean_module(argv) == module


def test_the_lean_parser_has_the_same_worker_command() -> None:
    def worker_options(parser: object) -> list[tuple[str, ...]]:
        sub = next(a for a in parser._actions if a.dest == "command")  # type: ignore[attr-defined]
        return sorted(tuple(a.option_strings) for a in sub.choices["worker"]._actions)

    full, lean = build_parser(), build_parser("workers.cli.worker")
    assert worker_options(lean) == worker_options(full)
    assert lean.parse_args(["worker", "--queues", "ocm"]).queues == "ocm"


def test_a_worker_process_does_not_import_the_pipeline_library() -> None:
    code = (
        "import sys; from workers.cli import build_parser, lean_module; "
        "build_parser(lean_module(['worker'])); "
        "import workers.ocm; workers.ocm.contents(); "
        "print(sorted(m for m in ('celpy', 'lark', 'definitions.library', 'definitions.validate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
