"""The interface every landscape part implements."""

from __future__ import annotations

import abc
from pathlib import Path

import httpx

from landscape.process import ManagedProcess


class Part(abc.ABC):
    """One peer of the local landscape (a server process, an emulator, a registry...).

    A part starts on loopback ports it chooses at run time (unless told otherwise), exposes what
    clients need in :attr:`endpoints`, and exports environment variables for workers in :meth:`env`.
    """

    name: str = "part"

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []
        self.endpoints: dict[str, str] = {}

    @abc.abstractmethod
    def start(self, state_dir: Path) -> None:
        """Start the part and return once it answers. Raise LandscapeError with the log tail if not."""

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def env(self) -> dict[str, str]:
        """Environment variables that point workers and clients at this part."""
        return {}

    def pipeline_inputs(self) -> dict[str, object]:
        """Inputs of the edge-site pipeline this part provides (e.g. its BMC endpoints) for the demo."""
        return {}

    def start_python_server(self, label: str, argv: list[str], log: Path, port: int) -> str:
        """Run one of the landscape's HTTP servers (``argv``: ``python -m ...``) from the repository,
        kept in :attr:`processes` so that :meth:`stop` ends it; return its URL once /healthz answers 200."""
        repo_root = Path(__file__).resolve().parents[1]
        proc = ManagedProcess(label, argv, log, env={"PYTHONPATH": str(repo_root)}, cwd=repo_root)
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        proc.start(lambda: httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200, timeout=30)
        return url

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]
