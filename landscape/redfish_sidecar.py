"""A small Redfish front for sushy-emulator: the pieces its fake driver lacks, plus fault injection.

It listens where clients connect (optionally with TLS) and passes every request through to the
emulator, except:

- ``Systems/<id>/Bios`` and ``Systems/<id>/Bios/Settings``: BIOS attributes with pending settings
  (PATCH Settings; applied when the system is reset or powered on), the way real BMCs stage them;
- ``UpdateService`` (``FirmwareInventory`` and ``UpdateService.SimpleUpdate``) and ``TaskService``:
  a firmware update fetches the image URI (404 -> task Exception), runs a few seconds as a Task,
  then bumps the component's version (``<component>-<version>.<ext>`` names the component);
- ``/_apeiro/faults`` (POST JSON): ``{"unavailable_requests": N}`` answers the next N Redfish
  requests with 503, ``{"unavailable_for_s": S}`` for S seconds, ``{"firmware_stuck": true}``
  leaves update tasks Running forever, ``{"ignore_graceful": true}`` accepts GracefulShutdown and
  ignores it (a hung OS); ``{}`` clears;
- ``/_apeiro/boots`` (GET): systems that booted the inserted CD (a simulated OS that "reports in");
  with ``--callback-url`` each such boot is also POSTed there as JSON;
- ``--bmc-ports P1,P2,...``: one BMC per system, as real servers have: port ``Pi`` shows only the
  i-th system (in the emulator's order) and has its own firmware inventory, so an update through one
  server's BMC leaves the others as they were. ``--port`` still shows every system (one shared BMC).

Run: ``python -m landscape.redfish_sidecar --upstream URL --port P [--certfile F --keyfile F]
[--username U --password-file F]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import itertools
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding"}

DEFAULT_BIOS = {
    "BootMode": "Uefi",
    "ProcHyperthreading": "Enabled",
    "ProcVirtualization": "Enabled",
    "SecureBoot": "Disabled",
    "PowerProfile": "Balanced",
    "SriovGlobalEnable": "Disabled",
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": "Base.1.0.GeneralError",
                "message": message,
                "@Message.ExtendedInfo": [{"Message": message, "Severity": "Warning"}],
            }
        },
        status_code=status,
    )


class SidecarState:
    def __init__(
        self,
        upstream: str,
        username: str | None,
        password: str | None,
        callback_url: str | None,
        firmware_seconds: float,
        boot_seconds: float,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.username = username
        self.password = password
        self.callback_url = callback_url
        self.firmware_seconds = firmware_seconds
        self.boot_seconds = boot_seconds
        self.bios: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.firmware: dict[str, dict[str, Any]] = {
            "BMC": {"Name": "BMC firmware", "Version": "1.0.0"},
            "BIOS": {"Name": "System BIOS", "Version": "1.0.0"},
        }
        self.tasks: dict[str, dict[str, Any]] = {}
        self.task_ids = itertools.count(1)
        self.unavailable_requests = 0
        self.unavailable_until = 0.0
        self.firmware_stuck = False
        self.ignore_graceful = False
        self.boots: list[dict[str, Any]] = []
        self.background: set[asyncio.Task[None]] = set()
        self.client = httpx.AsyncClient(base_url=self.upstream, timeout=60.0)
        #: --bmc-ports: port -> index of the one system that port's BMC shows (and its own firmware)
        self.bmc_ports: dict[int, int] = {}
        self.port_firmware: dict[int, dict[str, dict[str, Any]]] = {}

    def firmware_of(self, port: int | None) -> dict[str, dict[str, Any]]:
        if port in self.bmc_ports:
            return self.port_firmware.setdefault(port, {k: dict(v) for k, v in self.firmware.items()})
        return self.firmware

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


def build_app(state: SidecarState) -> Starlette:
    def authorized(request: Request) -> bool:
        if state.username is None:
            return True
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, state.username) and hmac.compare_digest(pw, state.password or "")

    def fault() -> Response | None:
        if state.unavailable_requests > 0:
            state.unavailable_requests -= 1
            return _error(503, "the BMC is busy (injected fault)")
        if time.monotonic() < state.unavailable_until:
            return _error(503, "the BMC is busy (injected fault)")
        return None

    async def passthrough(request: Request, path: str, body: bytes | None = None) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        resp = await state.client.request(
            request.method,
            "/" + path,
            params=dict(request.query_params),
            headers=headers,
            content=await request.body() if body is None else body,
        )
        out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS | {"content-encoding"}}
        return Response(resp.content, status_code=resp.status_code, headers=out)

    async def faults(request: Request) -> Response:
        data = await request.json() if await request.body() else {}
        state.unavailable_requests = int(data.get("unavailable_requests", 0))
        state.unavailable_until = time.monotonic() + float(data.get("unavailable_for_s", 0))
        state.firmware_stuck = bool(data.get("firmware_stuck", False))
        state.ignore_graceful = bool(data.get("ignore_graceful", False))
        return JSONResponse({"ok": True})

    async def boots(request: Request) -> Response:
        return JSONResponse(state.boots)

    def bios_of(system: str) -> dict[str, Any]:
        return state.bios.setdefault(system, dict(DEFAULT_BIOS))

    async def simulate_boot(system: str) -> None:
        """Once the system is really On (the fake driver lands power changes late), "boot" for a while,
        then report in if it booted an inserted CD."""
        headers = {}
        if state.username:
            token = base64.b64encode(f"{state.username}:{state.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            for _ in range(120):
                sysdoc = (await state.client.get(f"/redfish/v1/Systems/{system}", headers=headers)).json()
                if sysdoc.get("PowerState") == "On":
                    break
                await asyncio.sleep(0.25)
            else:
                return
            await asyncio.sleep(state.boot_seconds)
            if sysdoc.get("Boot", {}).get("BootSourceOverrideTarget") != "Cd":
                return
            image = None
            places = [f"/redfish/v1/Systems/{system}"] + [
                mgr["@odata.id"] for mgr in sysdoc.get("Links", {}).get("ManagedBy", [])
            ]
            for place in places:
                vm = await state.client.get(place + "/VirtualMedia/Cd", headers=headers)
                if vm.status_code == 200 and vm.json().get("Inserted"):
                    image = vm.json().get("Image")
                    break
            if not image:
                return
            report = {
                "identity": str(sysdoc.get("UUID", system)).lower(),
                "system": system,
                "image": image,
                "hostname": sysdoc.get("Name"),
            }
            state.boots.append(report)
            if state.callback_url:
                with contextlib.suppress(httpx.HTTPError):
                    await state.client.post(state.callback_url, json=report)
        except (httpx.HTTPError, ValueError, KeyError):
            return

    async def redfish(request: Request) -> Response:
        path = request.path_params["path"]
        if path.strip("/") not in ("redfish", "redfish/v1") and not authorized(request):
            return _error(401, "authentication required")
        injected = fault()
        if injected is not None:
            return injected
        p = "/" + path.strip("/")
        method = request.method
        server = request.scope.get("server") or (None, None)
        port = server[1] if server[1] in state.bmc_ports else None
        firmware = state.firmware_of(port)
        if port is not None and p == "/redfish/v1/Systems" and method == "GET":
            resp = await passthrough(request, path)
            if resp.status_code != 200:
                return resp
            doc = json.loads(bytes(resp.body))
            members = sorted(doc.get("Members", []), key=lambda m: str(m.get("@odata.id", "")))
            index = state.bmc_ports[port]
            doc["Members"] = members[index : index + 1]
            doc["Members@odata.count"] = len(doc["Members"])
            return JSONResponse(doc)
        if p == "/redfish/v1" and method == "GET":
            resp = await passthrough(request, path)
            if resp.status_code != 200:
                return resp
            doc = json.loads(bytes(resp.body))
            doc["UpdateService"] = {"@odata.id": "/redfish/v1/UpdateService"}
            doc["TaskService"] = {"@odata.id": "/redfish/v1/TaskService"}
            return JSONResponse(doc)
        m = re.fullmatch(r"/redfish/v1/Systems/([^/]+)", p)
        if m and method == "GET":
            resp = await passthrough(request, path)
            if resp.status_code != 200:
                return resp
            doc = json.loads(bytes(resp.body))
            doc["Bios"] = {"@odata.id": p + "/Bios"}
            return JSONResponse(doc)
        m = re.fullmatch(r"/redfish/v1/Systems/([^/]+)/Bios", p)
        if m and method == "GET":
            system = m.group(1)
            return JSONResponse(
                {
                    "@odata.id": p,
                    "@odata.type": "#Bios.v1_1_0.Bios",
                    "Id": "BIOS",
                    "Name": "BIOS Configuration",
                    "Attributes": bios_of(system),
                    "@Redfish.Settings": {"SettingsObject": {"@odata.id": p + "/Settings"}},
                }
            )
        m = re.fullmatch(r"/redfish/v1/Systems/([^/]+)/Bios/Settings", p)
        if m:
            system = m.group(1)
            if method == "PATCH":
                body = await request.json()
                attrs = body.get("Attributes") or {}
                unknown = sorted(set(attrs) - set(bios_of(system)))
                if unknown:
                    return _error(400, f"unknown BIOS attributes: {', '.join(unknown)}")
                state.pending.setdefault(system, {}).update(attrs)
                return Response(status_code=204)
            return JSONResponse({"@odata.id": p, "Id": "Settings", "Attributes": state.pending.get(system, {})})
        m = re.fullmatch(r"/redfish/v1/Systems/([^/]+)/Actions/ComputerSystem\.Reset", p)
        if m and method == "POST":
            system = m.group(1)
            raw = await request.body()
            reset = json.loads(raw).get("ResetType", "") if raw else ""
            if reset == "GracefulShutdown" and state.ignore_graceful:
                return Response(status_code=204)  # accepted, and ignored like a hung OS would
            resp = await passthrough(request, path, raw)
            if resp.status_code < 300 and reset in (
                "On",
                "ForceOn",
                "ForceRestart",
                "GracefulRestart",
                "PowerCycle",
            ):
                if state.pending.get(system):
                    bios_of(system).update(state.pending.pop(system))
                state.spawn(simulate_boot(system))
            return resp
        if p == "/redfish/v1/UpdateService" and method == "GET":
            return JSONResponse(
                {
                    "@odata.id": p,
                    "Id": "UpdateService",
                    "Name": "Update service",
                    "ServiceEnabled": True,
                    "FirmwareInventory": {"@odata.id": p + "/FirmwareInventory"},
                    "Actions": {
                        "#UpdateService.SimpleUpdate": {
                            "target": p + "/Actions/UpdateService.SimpleUpdate",
                            "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"],
                        }
                    },
                }
            )
        if p == "/redfish/v1/UpdateService/FirmwareInventory" and method == "GET":
            return JSONResponse(
                {
                    "@odata.id": p,
                    "Members@odata.count": len(firmware),
                    "Members": [{"@odata.id": f"{p}/{k}"} for k in firmware],
                }
            )
        m = re.fullmatch(r"/redfish/v1/UpdateService/FirmwareInventory/([^/]+)", p)
        if m and method == "GET":
            item = firmware.get(m.group(1))
            if item is None:
                return _error(404, f"no firmware item {m.group(1)}")
            return JSONResponse({"@odata.id": p, "Id": m.group(1), "Updateable": True, **item})
        if p == "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate" and method == "POST":
            body = await request.json()
            uri = body.get("ImageURI")
            if not uri:
                return _error(400, "ImageURI is required")
            task_id = str(next(state.task_ids))
            task: dict[str, Any] = {
                "@odata.id": f"/redfish/v1/TaskService/Tasks/{task_id}",
                "Id": task_id,
                "Name": f"SimpleUpdate {uri}",
                "TaskState": "Running",
                "PercentComplete": 0,
                "Messages": [],
            }
            state.tasks[task_id] = task
            state.spawn(run_update(task, uri, firmware))
            return JSONResponse(task, status_code=202, headers={"Location": task["@odata.id"]})
        if p == "/redfish/v1/TaskService" and method == "GET":
            return JSONResponse({"@odata.id": p, "Id": "TaskService", "Tasks": {"@odata.id": p + "/Tasks"}})
        m = re.fullmatch(r"/redfish/v1/TaskService/Tasks/([^/]+)", p)
        if m and method == "GET":
            found = state.tasks.get(m.group(1))
            return JSONResponse(found) if found else _error(404, f"no task {m.group(1)}")
        return await passthrough(request, path)

    async def run_update(task: dict[str, Any], uri: str, firmware: dict[str, dict[str, Any]]) -> None:
        try:
            async with httpx.AsyncClient(timeout=30, verify=False) as c:
                resp = await c.get(uri)
            if resp.status_code != 200:
                raise ValueError(f"fetching {uri} answered HTTP {resp.status_code}")
        except (httpx.HTTPError, ValueError) as exc:
            task.update(
                TaskState="Exception",
                PercentComplete=0,
                Messages=[{"Message": f"image transfer failed: {exc}", "Severity": "Critical"}],
            )
            return
        steps = 5
        for i in range(1, steps + 1):
            await asyncio.sleep(state.firmware_seconds / steps)
            if state.firmware_stuck:
                task["PercentComplete"] = 10
                continue
            task["PercentComplete"] = int(100 * i / steps)
        if state.firmware_stuck:
            return
        name = uri.rsplit("/", 1)[-1]
        match = re.match(r"(?P<component>[A-Za-z]+)-(?P<version>[0-9][^/]*?)(\.[a-z]+)?$", name)
        if match:
            comp = match.group("component").upper()
            firmware.setdefault(comp, {"Name": f"{comp} firmware"})["Version"] = match.group("version")
        task.update(
            TaskState="Completed",
            PercentComplete=100,
            Messages=[{"Message": f"updated from {name}", "Severity": "OK"}],
        )

    routes = [
        Route("/_apeiro/faults", faults, methods=["POST"]),
        Route("/_apeiro/boots", boots, methods=["GET"]),
        Route("/{path:path}", redfish, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
    ]
    return Starlette(routes=routes)


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--certfile")
    ap.add_argument("--keyfile")
    ap.add_argument("--username")
    ap.add_argument("--password-file")
    ap.add_argument("--callback-url")
    ap.add_argument("--firmware-seconds", type=float, default=2.0)
    ap.add_argument("--boot-seconds", type=float, default=1.0)
    ap.add_argument("--bmc-ports", help="comma-separated ports: one BMC per system (see the module doc)")
    args = ap.parse_args()
    password = Path(args.password_file).read_text().strip() if args.password_file else None
    state = SidecarState(
        args.upstream, args.username, password, args.callback_url, args.firmware_seconds, args.boot_seconds
    )
    ports = [args.port] + [int(p) for p in (args.bmc_ports or "").split(",") if p.strip()]
    state.bmc_ports = {port: i for i, port in enumerate(ports[1:])}
    config = uvicorn.Config(
        build_app(state),
        host=args.host,
        port=args.port,
        log_level="warning",
        ssl_certfile=args.certfile,
        ssl_keyfile=args.keyfile,
    )
    if len(ports) == 1:
        uvicorn.Server(config).run()
        return
    sockets = []
    for port in ports:  # one listening socket per BMC, all served by one server
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, port))
        sockets.append(sock)
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
