"""The local kcp as a landscape part: `python -m landscape.kcp` on a free loopback port."""

from __future__ import annotations

import sys
from pathlib import Path

from landscape.part import Part
from landscape.process import free_port


class KcpServer(Part):
    """``endpoints["url"]``: the front (``/clusters/<path>/...``, ``/services/apiexport/...``)."""

    name = "kcp"

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        argv = [sys.executable, "-m", "landscape.kcp", "--port", str(self.port)]
        self.endpoints = {"url": self.start_python_server("local kcp", argv, state_dir / "kcp.log", self.port)}

    def env(self) -> dict[str, str]:
        return {"APEIRO_KCP_URL": self.endpoints["url"]} if self.endpoints else {}
