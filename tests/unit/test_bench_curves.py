"""Every benchmark `make bench` runs measures a curve: issue 15, "Curves, not points".

Benchmarks never run in `make test`; this only reads their source, so a new benchmark that prints a
single figure (no load sweep, no same-run baseline, no plot) fails here instead of in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench.__main__ import DIAGNOSTICS, HELPERS, available

BENCH = Path(__file__).resolve().parents[2] / "bench"


def calls(name: str) -> set[str]:
    tree = ast.parse((BENCH / f"{name}.py").read_text())
    return {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
    }


def test_make_bench_runs_every_benchmark_but_helpers_and_diagnostics() -> None:
    modules = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")}
    assert set(available()) == modules - HELPERS - DIAGNOSTICS
    assert {"transport", "webhook", "engine", "discovery", "promotion"} <= set(available())


@pytest.mark.parametrize("name", available())
def test_each_benchmark_sweeps_reports_and_plots(name: str) -> None:
    used = calls(name)
    assert "add_common_args" in used, f"bench.{name} takes no --quick (bench._common.add_common_args)"
    assert "report" in used, f"bench.{name} prints no table with target and saturation (bench._common.report)"
    assert "plot" in used, f"bench.{name} writes no PNG under bench/results (bench._common.plot)"
    assert "exit_cleanly" in used, f"bench.{name} may abort at interpreter exit (bench._common.exit_cleanly)"
