"""docs/architecture.md's lifecycle table names real places: every path exists, every queue is one
the code defines, every doc page is there (so the map a newcomer reads cannot drift from the tree)."""

from __future__ import annotations

import re
from pathlib import Path

from definitions import queues

ROOT = Path(__file__).resolve().parents[2]
TOP = ("definitions/", "workflows/", "activities/", "workers/", "triggers/", "landscape/", "tests/")


def _rows() -> list[list[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Where each lifecycle lives", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| ---")]
    return [re.split(r"(?<!\\)\|", ln)[1:-1] for ln in lines[1:]]


def test_one_row_per_lifecycle() -> None:
    assert [r[0].strip() for r in _rows()] == ["server", "cluster", "component", "promotion", "pipeline", "triggers"]


def test_every_path_exists() -> None:
    paths = [p for row in _rows() for cell in row for p in re.findall(r"`([^`\s]+)`", cell) if p.startswith(TOP)]
    assert len(paths) > 30
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_queues_and_doc_pages_are_real() -> None:
    named = [q for row in _rows() for q in re.findall(r"^ `(\w+)` \(", row[4])]
    assert named == ["redfish", "gardener", "ocm", "konfidence", "pipeline"]
    assert set(named) <= set(queues.ALL)
    for row in _rows():
        for page in re.findall(r"\]\(([\w-]+\.md)\)", row[8]):
            assert (ROOT / "docs" / page).exists(), page
