"""Every malformed example is rejected with its expected, path-qualified message (first line of the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from definitions.catalog import load_catalog
from definitions.library import EXAMPLES
from definitions.validate import DefinitionError, load_yaml, validate_definition
from workers.cli import main

INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: <message>'"
    return first.removeprefix("# expect: ")


def test_there_are_at_least_fifteen_distinct_cases() -> None:
    assert len(INVALID) >= 15
    assert len({expected(p) for p in INVALID}) == len(INVALID)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_rejected_with_path_qualified_message(path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        validate_definition(load_yaml(path.read_text(), path.name), load_catalog(), source=path.name)
    messages = [str(p) for p in info.value.problems]
    assert expected(path) in messages


@pytest.mark.parametrize("path", INVALID[:5], ids=[p.stem for p in INVALID[:5]])
def test_cli_validate_exits_1_and_prints_the_path(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: {expected(path)}" in out
