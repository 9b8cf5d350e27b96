"""A landscape: an ordered set of parts with a state directory and a state file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from landscape.part import Part
from landscape.process import LandscapeError, pid_alive, stop_pid

STATE_FILE = "landscape.json"


def default_state_dir() -> Path:
    return Path(os.environ.get("APEIRO_STATE_DIR", ".apeiro/landscape")).resolve()


class Landscape:
    """Starts parts in order, stops them in reverse; records endpoints and pids in `landscape.json`."""

    def __init__(self, parts: Sequence[Part], state_dir: Path | None = None) -> None:
        self.parts = list(parts)
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.extra_pids: list[int] = []

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(f"no landscape part named {name!r}")

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        existing = read_state(self.state_dir)
        if existing and any(pid_alive(pid) for pid in all_pids(existing)):
            raise LandscapeError(
                f"a landscape is already running from {self.state_dir}; stop it with `apeiro dev down`"
            )
        started: list[Part] = []
        try:
            for part in self.parts:
                part.start(self.state_dir / part.name)
                started.append(part)
                self.write_state()
        except BaseException:
            for part in reversed(started):
                with contextlib.suppress(Exception):
                    part.stop()
            raise

    def stop(self) -> None:
        errors = []
        for pid in self.extra_pids:
            stop_pid(pid)
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"{part.name}: {exc}")
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / STATE_FILE).unlink()
        if errors:
            raise LandscapeError("some parts did not stop cleanly: " + "; ".join(errors))

    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for part in self.parts:
            merged.update(part.env())
        return merged

    def state(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "parts": [
                {"name": p.name, "endpoints": p.endpoints, "pids": p.pids, "env": p.env() if p.endpoints else {}}
                for p in self.parts
            ],
            "workers": self.extra_pids,
        }

    def write_state(self) -> None:
        path = self.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        # The state holds the parts' environment, registry and BMC passwords among it: owner only,
        # from creation on (no window in which the file is world-readable).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(self.state(), indent=2))
        tmp.replace(path)

    @contextlib.contextmanager
    def running(self) -> Iterator[Landscape]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def all_pids(state: dict[str, Any]) -> list[int]:
    pids = list(state.get("workers", []))
    for part in state.get("parts", []):
        pids.extend(part.get("pids", []))
    return pids


def stop_from_state(state_dir: Path) -> list[str]:
    """Stop a landscape another process started (`apeiro dev down`). Returns what was stopped."""
    state = read_state(state_dir)
    if state is None:
        return []
    stopped = []
    for pid in state.get("workers", []):
        stop_pid(pid)
        stopped.append(f"worker pid {pid}")
    for part in reversed(state.get("parts", [])):
        for pid in reversed(part.get("pids", [])):
            stop_pid(pid)
        stopped.append(part["name"])
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()
    return stopped
