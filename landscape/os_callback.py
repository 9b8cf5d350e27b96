"""The landscape's stand-in for an OS boot callback receiver: a booted server POSTs
``{"identity": ..., "hostname": ...}`` to ``/os-report`` and this relays it as the `report_in` signal
to the workflow ``server-provision-<identity>``.

Run: ``python -m landscape.os_callback --port P`` with TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE set.

It talks to the product only over the wire, as a real peer would: it imports nothing from the product
and writes the signal payload itself, plain JSON (Temporal's ``json/plain`` encoding) with the fields
the product documents for the report (docs/server.md): ``identity``, ``hostname``, ``image_sha256``,
``addresses``. The workflow id scheme ``server-provision-<identity>`` and the signal name ``report_in``
are the published contract; a test in tests/ checks the product still decodes what this sends.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client
from temporalio.service import RPCError

from landscape.part import Part
from landscape.process import ManagedProcess, free_port

#: The workflow id prefix and signal of a waiting server provision (the product's published contract).
WORKFLOW_ID_PREFIX = "server-provision-"
SIGNAL = "report_in"
#: The report fields the product reads; anything else is dropped, not relayed.
FIELDS = {"identity": str, "hostname": str, "image_sha256": str, "addresses": list}


def parse_report(body: object) -> dict[str, object]:
    """The signal payload for a report body; ValueError says what is wrong with it."""
    if not isinstance(body, dict):
        raise ValueError("the report must be a JSON object")
    report: dict[str, object] = {}
    for name, typ in FIELDS.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, typ) or (typ is list and not all(isinstance(a, str) for a in value)):
            raise ValueError(f"{name} must be a {'list of strings' if typ is list else 'string'}")
        report[name] = value
    if not report.get("identity"):
        raise ValueError("identity is required")
    return report


async def connect_from_env() -> Client:
    """A plain Temporal client for the landscape's own dev server (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE)."""
    return await Client.connect(
        os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"), namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )


def build_app(client_factory: object) -> Starlette:
    state: dict[str, Client] = {}

    async def client() -> Client:
        if "c" not in state:
            state["c"] = await client_factory()  # type: ignore[operator]
        return state["c"]

    async def report(request: Request) -> JSONResponse:
        try:
            rep = parse_report(await request.json())
        except ValueError as exc:
            return JSONResponse({"error": f"invalid report: {exc}"}, status_code=422)
        wid = f"{WORKFLOW_ID_PREFIX}{rep['identity']}"
        try:
            await (await client()).get_workflow_handle(wid).signal(SIGNAL, rep)
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

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvicorn.run(build_app(connect_from_env), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
