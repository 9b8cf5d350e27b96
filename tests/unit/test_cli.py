"""The `apeiro` command without Temporal: validate, graph, steps, pipelines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from definitions.library import EXAMPLES
from workers.cli import main

EDGE = str(EXAMPLES / "edge-site.yaml")


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", EDGE]) == 0
    assert "valid pipeline 'edge-site'" in capsys.readouterr().out


def test_validate_checks_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", EDGE, "--input", "upgradeCluster=maybe"]) == 1
    assert "inputs.upgradeCluster: must be a boolean, got str 'maybe'" in capsys.readouterr().out


def test_validate_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    bad = EXAMPLES / "invalid" / "02-unknown-need.yaml"
    assert main(["validate", str(bad), "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert '"path": "spec.steps[1].needs[0]"' in out


def test_validate_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nope/missing.yaml"]) == 1
    assert "no such file" in capsys.readouterr().out


def test_graph_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", EDGE]) == 0
    assert "approve_rollout --> soak" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (debian-packages.txt)")
def test_graph_svg(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    assert main(["graph", "edge-site", "--svg", str(out)]) == 0
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "approve_rollout" in svg


def test_steps_and_pipelines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["steps"]) == 0
    out = capsys.readouterr().out
    for name in ("core.echo", "core.http", "core.wait", "core.approval", "core.pipeline"):
        assert name in out
    assert main(["pipelines"]) == 0
    assert "edge-site" in capsys.readouterr().out


def test_worker_rejects_unknown_queue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--queues", "pipeline,nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown task queue(s) nope" in err
    from workers.queues import known_queues

    assert f"known: {', '.join(known_queues())}" in err
