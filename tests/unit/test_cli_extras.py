"""`apeiro` without the optional extras or the landscape: help works, commands that need a missing
extra exit 2 naming it, and the landscape is loaded only by `apeiro dev` / `apeiro demo`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from workers.cli import main
from workers.cli.extras import COMMAND_EXTRAS, MODULE_EXTRAS

REPO = Path(__file__).resolve().parents[2]
EXTRAS: dict[str, list[str]] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]

#: Every optional third-party module and the landscape, blocked in a subprocess.
BLOCKER = """
import sys, importlib.abc
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Block())
from workers.cli import main
codes = []
for argv in {argvs!r}:
    try:
        codes.append(main(argv))
    except SystemExit as exc:
        codes.append(exc.code)
print("codes=" + ",".join(map(str, codes)), file=sys.stderr)
"""


def _dist_names(extra: str) -> set[str]:
    import re

    return {re.split(r"[<>=\\[ ;]", d)[0].lower() for d in EXTRAS[extra]}


def test_the_extras_table_matches_pyproject() -> None:
    for module, (dist, extra) in MODULE_EXTRAS.items():
        assert extra in EXTRAS, f"{module}: extra {extra} is not in pyproject.toml"
        assert dist in _dist_names(extra), f"{module}: {dist} is not in extra {extra}"
    for command, extra in COMMAND_EXTRAS.items():
        assert {"uvicorn", "starlette"} <= _dist_names(extra), command


def blocked_run(blocked: set[str], *argvs: list[str]) -> tuple[list[int], str, str]:
    """Run `apeiro ARGV` for each argv in one interpreter where ``blocked`` cannot be imported."""
    code = BLOCKER.format(blocked=sorted(blocked), argvs=list(argvs))
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    assert last.startswith("codes="), done.stderr
    err = done.stderr.strip().rsplit("\n", 1)[0] if "\n" in done.stderr.strip() else ""
    return [int(c) for c in last.removeprefix("codes=").split(",")], done.stdout, err


OPTIONAL = set(MODULE_EXTRAS) | {"landscape", "bcrypt", "jsonpatch", "sushy_tools"}


def test_help_works_without_any_extra_or_the_landscape() -> None:
    groups = ("worker", "dev", "webhook", "codec", "promote", "cluster", "baremetal", "ocm", "schedule")
    codes, out, err = blocked_run(OPTIONAL, ["--help"], *[[g, "--help"] for g in groups])
    assert codes == [0] * (len(groups) + 1), err
    assert "worker" in out and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "missing", "wanted"),
    [
        (["webhook", "serve", "--skip-key-check"], "fastapi", "apeiro-orchestrator[webhook]"),
        (["codec", "serve"], "uvicorn", "apeiro-orchestrator[codec]"),
    ],
)
def test_a_missing_extra_exits_2_naming_it(argv: list[str], missing: str, wanted: str) -> None:
    codes, _, err = blocked_run({missing}, argv)
    assert codes == [2], err
    assert wanted in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_a_worker_whose_extra_is_missing_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m == "sushy" or m.startswith(("sushy.", "activities.redfish"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sushy", None)

    async def no_temporal() -> Any:
        return object()

    monkeypatch.setattr("workers.cli.worker.client_from_env", no_temporal)
    assert main(["worker", "--queues", "redfish"]) == 2
    err = capsys.readouterr().err
    assert "`apeiro worker` needs sushy" in err and "apeiro-orchestrator[server]" in err


@pytest.mark.parametrize(
    ("blocked", "said"),
    [
        ({"landscape"}, "the local landscape (apeiro-landscape) is not installed"),
        ({"bcrypt"}, "the local landscape (apeiro-landscape) needs 'bcrypt'"),
    ],
)
def test_dev_without_the_landscape_exits_2_with_the_install_hint(blocked: set[str], said: str) -> None:
    codes, _, err = blocked_run(
        blocked, ["dev", "status", "--state-dir", "/nonexistent"], ["demo", "--state-dir", "/nonexistent"]
    )
    assert codes == [2, 2], err
    lines = err.splitlines()
    assert len(lines) == 2 and all(said in line and "pip install -e './landscape" in line for line in lines), err


def test_an_unrelated_missing_module_is_not_blamed_on_an_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: Any) -> int:
        raise ModuleNotFoundError("No module named 'definitions.nope'", name="definitions.nope")

    monkeypatch.setattr("workers.cli.worker.cmd_worker", broken)
    # A bug of ours must surface as what it is (one line, exit 1), not as "install an extra" (exit 2).
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert "definitions.nope" in err and "install" not in err and "Traceback" not in err
