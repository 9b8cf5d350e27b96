"""The local kcp as a landscape part: `python -m landscape.kcp` on a free loopback port."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from landscape.part import Part
from landscape.process import ManagedProcess, free_port


class KcpServer(Part):
    """``endpoints["url"]``: the front (``/clusters/<path>/...``, ``/services/apiexport/...``)."""

    name = "kcp"

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        repo_root = Path(__file__).resolve().parents[2]
        proc = ManagedProcess(
            "local kcp",
            [sys.executable, "-m", "landscape.kcp", "--port", str(self.port)],
            state_dir / "kcp.log",
            env={"PYTHONPATH": str(repo_root)},
            cwd=repo_root,
        )
        self.processes.append(proc)
        url = f"http://127.0.0.1:{self.port}"
        proc.start(lambda: httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200, timeout=30)
        self.endpoints = {"url": url}

    def env(self) -> dict[str, str]:
        return {"APEIRO_KCP_URL": self.endpoints["url"]} if self.endpoints else {}
