"""The landscape's stand-in for the webhook gateway's "OS booted" callback: a booted server POSTs
``{"identity": ..., "hostname": ...}`` to ``/os-report`` and this relays it as the `report_in` signal
to the workflow ``server-provision-<identity>``.

Run: ``python -m landscape.os_callback --port P`` with TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE set.
The project's webhook gateway (triggers/) can take this over; the contract is the signal name
``report_in`` with an :class:`definitions.server.OsReport` and the workflow id from
:func:`definitions.server.provision_workflow_id`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client
from temporalio.service import RPCError

from definitions.server import OsReport, provision_workflow_id
from landscape.part import Part
from landscape.process import ManagedProcess, free_port


def build_app(client_factory: object) -> Starlette:
    state: dict[str, Client] = {}

    async def client() -> Client:
        if "c" not in state:
            state["c"] = await client_factory()  # type: ignore[operator]
        return state["c"]

    async def report(request: Request) -> JSONResponse:
        try:
            rep = OsReport.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"error": f"invalid report: {exc}"}, status_code=422)
        if not rep.identity:
            return JSONResponse({"error": "identity is required"}, status_code=422)
        wid = provision_workflow_id(rep.identity)
        try:
            await (await client()).get_workflow_handle(wid).signal("report_in", rep)
        except RPCError as exc:
            return JSONResponse({"error": f"workflow {wid}: {exc.message}"}, status_code=404)
        return JSONResponse({"signalled": wid})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/os-report", report, methods=["POST"]), Route("/healthz", health)])


class OsCallbackRelay(Part):
    """Relays OS reports to Temporal; ``temporal`` is the landscape's Temporal part (its env is used)."""

    name = "os-callback"

    def __init__(self, temporal: Part | None = None) -> None:
        super().__init__()
        self.temporal = temporal

    def start(self, state_dir: Path) -> None:
        port = free_port()
        proc = ManagedProcess(
            "os callback relay",
            [sys.executable, "-m", "landscape.os_callback", "--port", str(port)],
            state_dir / "os-callback.log",
            cwd=Path(__file__).resolve().parents[1],
            env=self.temporal.env() if self.temporal is not None else None,
        )
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        proc.start(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200)
        self.endpoints = {"url": url, "report_url": f"{url}/os-report"}


def main() -> None:
    import uvicorn

    from workers.config import connect

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvicorn.run(build_app(connect), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
