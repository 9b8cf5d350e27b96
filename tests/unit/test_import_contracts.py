"""The import contracts in pyproject.toml (`lint-imports`): they hold on this tree, and each one really
fails when its rule is broken (checked on a small throwaway tree with the same contracts)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("definitions", "workflows", "activities", "workers", "triggers")
RUN = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(cwd: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", RUN, str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def contracts() -> list[dict[str, object]]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"])


def test_contracts_hold_on_this_tree() -> None:
    done = lint_imports(ROOT, ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.lower().split("contracts:")[-1]
    assert " 0 broken" in summary and "kept" in summary, done.stdout[-2000:]


def test_the_rules_the_house_asks_for_are_there() -> None:
    by_source = {tuple(c["source_modules"]): c for c in contracts()}  # type: ignore[arg-type]
    assert by_source[PRODUCT]["forbidden_modules"] == ["landscape"]
    assert by_source[("landscape",)]["forbidden_modules"] == list(PRODUCT)
    assert by_source[("workflows",)]["forbidden_modules"] == ["activities"]
    assert by_source[("triggers",)]["ignore_imports"] == ["triggers.** -> workers.config"]
    assert by_source[("workers.cli",)]["forbidden_modules"] == ["triggers"]


MODULES = {
    # one module breaking each contract, and the imports the contracts allow
    "definitions/bad.py": "import landscape.part\n",
    "landscape/bad.py": "import definitions.model\n",
    "workflows/bad.py": "import activities.io\n",
    "triggers/bad.py": "import workers.cli.promote\n",
    "triggers/ok.py": "import workers.config\n",
    "workers/cli/bad.py": "import triggers.app\n",
    "workers/cli/webhook.py": "def serve():\n    import triggers.app\n",
    "workers/cli/schedule.py": "def apply():\n    import triggers.schedules\n",
    "workers/cli/dev.py": "def demo():\n    import workers.demo\n",
    "workers/demo.py": "import triggers.app\n",
}


def test_each_contract_fails_when_broken(tmp_path: Path) -> None:
    for pkg in (*PRODUCT, "landscape", "workers/cli"):
        (tmp_path / pkg).mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    for leaf in (
        "landscape/part.py",
        "definitions/model.py",
        "activities/io.py",
        "workers/cli/promote.py",
        "workers/config.py",
        "triggers/app.py",
        "triggers/schedules.py",
    ):
        (tmp_path / leaf).write_text("")
    for path, text in MODULES.items():
        (tmp_path / path).write_text(text)
    config = tmp_path / "pyproject.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    done = lint_imports(tmp_path, config)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    for source, target in (
        ("definitions.bad", "landscape.part"),
        ("landscape.bad", "definitions.model"),
        ("workflows.bad", "activities.io"),
        ("triggers.bad", "workers.cli.promote"),
        ("workers.cli.bad", "triggers.app"),
    ):
        assert f"{source} -> {target}" in out, out
    # What the contracts allow stays allowed: the shared client module, the lazily loading commands.
    assert "triggers.ok ->" not in out and "workers.cli.webhook ->" not in out
    assert "Contracts: 0 kept, 5 broken." in out


PRODUCT_FILES = [p for pkg in PRODUCT for p in sorted((ROOT / pkg).rglob("*.py"))]


@pytest.mark.parametrize("path", [p for p in PRODUCT_FILES if "workers/cli" in p.as_posix()], ids=lambda p: p.name)
def test_cli_loads_triggers_only_inside_commands(path: Path) -> None:
    """`apeiro --help` and workers never load the gateway: the CLI's imports of triggers (and of the demo,
    which loads them) are inside the command functions, never at module level."""
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not name.startswith(("triggers", "workers.demo")), f"{path}: module-level import of {name}"
