"""A full run of the local landscape (`apeiro demo`: the edge-site pipeline, a webhook and a schedule)
leaks no secret: every secret the landscape generated (registry and BMC passwords, from its state
file and password files) is absent from every workflow history (the Temporal database, read raw),
every log file, and the demo's own output; the state file holding them is 0600 while it exists."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from landscape.landscape import STATE_FILE

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("demo")]

ROOT = Path(__file__).resolve().parents[3]
SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$", re.IGNORECASE)
REF = ("env:", "file:", "k8s:")


def _watch_state(state: Path, found: dict[str, str], modes: list[int], stop: threading.Event) -> None:
    """While the demo runs, read the landscape's state file (it is removed when the landscape stops)."""
    while not stop.is_set():
        try:
            modes.append(stat.S_IMODE(state.stat().st_mode))
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            time.sleep(0.2)
            continue
        for part in data.get("parts", []):
            for key, value in (part.get("env") or {}).items():
                if SECRET_KEY.search(key) and isinstance(value, str) and len(value) >= 8 and not value.startswith(REF):
                    found[key] = value
        time.sleep(0.5)


def test_a_full_run_leaks_no_landscape_secret(tmp_path: Path) -> None:
    if not Path("/usr/bin/docker-registry").exists():
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    state_dir = tmp_path / "demo"
    found: dict[str, str] = {}
    modes: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_state, args=(state_dir / STATE_FILE, found, modes, stop), daemon=True)
    watcher.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("APEIRO_DEFINITIONS", None)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "workers.cli", "demo", "--state-dir", str(state_dir)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        stop.set()
        watcher.join(timeout=5)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]

    secrets = dict(found)
    for path in state_dir.rglob("password"):
        if path.is_file() and path.read_text().strip():
            secrets[str(path.relative_to(state_dir))] = path.read_text().strip()
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert any("PASSWORD" in k for k in found), f"no registry password seen in the state file: {sorted(found)}"
    assert secrets, "the landscape generated no secrets to look for"
    assert modes and set(modes) == {0o600}, f"state file modes seen: {sorted(set(map(oct, modes)))}"

    histories = [p for p in state_dir.rglob("*") if p.is_file() and ".db" in p.name]
    logs = [p for p in state_dir.rglob("*.log") if p.is_file()]
    assert histories, "no Temporal database found under the state directory"
    for name, value in secrets.items():
        assert value not in output, f"{name} appears in the demo's output"
        for path in histories + logs:
            assert value.encode() not in path.read_bytes(), f"{name} appears in {path.relative_to(state_dir)}"
