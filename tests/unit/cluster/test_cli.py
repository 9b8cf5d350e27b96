"""`apeiro cluster plan`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from landscape.gardener import samples
from workers.cli import cluster


def main(argv: list[str]) -> int:
    """The `cluster` command group on its own parser (COMMAND_MODULES wiring is the lead's merge)."""
    parser = argparse.ArgumentParser(prog="apeiro")
    cluster.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(samples.cloud_profile()))
    return path


def test_plan_prints_minor_steps(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "plan", "--profile", str(profile), "--from", "1.29.10", "--to", "1.32.2"]) == 0
    out = capsys.readouterr().out
    assert "1. control plane -> 1.30.8" in out and "3. control plane -> 1.32.2" in out
    assert "skipped 1.30.2: expired" in out


def test_plan_refuses_downgrade(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "plan", "--profile", str(profile), "--from", "1.31.4", "--to", "1.30.8"]) == 2
    assert "cannot downgrade" in capsys.readouterr().out


def test_plan_rejects_a_file_that_is_no_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("kind: Shoot\nspec: {}\n")
    assert main(["cluster", "plan", "--profile", str(bad), "--from", "1.30.8", "--to", "1.31.4"]) == 2
    assert "does not hold a CloudProfile" in capsys.readouterr().out
