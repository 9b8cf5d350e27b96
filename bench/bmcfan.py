"""N emulated BMCs, each its own endpoint and credentials, in front of one sushy-emulator.

A real site has one BMC per server: its own address, its own login, one system behind it. The
emulator serves many systems behind one endpoint, so this process listens on N ports on 127.0.0.1;
port i answers only for system i (``/redfish/v1/Systems`` lists just that one), only with the basic
credentials ``bmc-<i>`` / ``<secret>-<i>``, and forwards everything else to the emulator with the
emulator's own login. Run by ``bench.discovery``:

    python -m bench.bmcfan UPSTREAM_URL COUNT   (env APEIRO_BMCFAN_SECRET, APEIRO_BMCFAN_UPSTREAM_AUTH)

It prints one JSON line ``{"ports": [...]}`` when every port listens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import socket
import sys
from typing import Any

import httpx
import uvicorn

from bench._common import exit_cleanly


def credentials(i: int, secret: str) -> tuple[str, str]:
    return f"bmc-{i}", f"{secret}-{i}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Fan:
    def __init__(self, upstream: str, systems: list[str], secret: str, upstream_auth: str | None) -> None:
        self.upstream = upstream.rstrip("/")
        self.systems = systems  # index -> the @odata.id of that BMC's one system
        self.secret = secret
        self.upstream_auth = upstream_auth
        self.port_index: dict[int, int] = {}
        self.client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        i = self.port_index.get(scope["server"][1], -1)
        headers = dict((k.decode().lower(), v.decode()) for k, v in scope["headers"])
        public = scope["path"].rstrip("/") in ("/redfish", "/redfish/v1")  # the service root, as on a BMC
        if i < 0 or (not public and headers.get("authorization") != basic(*credentials(i, self.secret))):
            denied = json.dumps({"error": {"code": "Base.1.0.InsufficientPrivilege", "message": "bad credentials"}})
            await self._reply(send, 401, denied.encode(), [(b"www-authenticate", b'Basic realm="bmc"')])
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        fwd = {k: v for k, v in headers.items() if k not in ("host", "authorization", "content-length")}
        if self.upstream_auth:
            fwd["authorization"] = self.upstream_auth
        resp = await self.client.request(scope["method"], self.upstream + path, headers=fwd, content=body)
        content = resp.content
        if scope["method"] == "GET" and scope["path"].rstrip("/") == "/redfish/v1/Systems" and resp.status_code == 200:
            doc = resp.json()
            mine = [m for m in doc.get("Members", []) if m.get("@odata.id") == self.systems[i]]
            doc["Members"], doc["Members@odata.count"] = mine, len(mine)
            content = json.dumps(doc).encode()
        out = [
            (k.encode(), v.encode())
            for k, v in resp.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
        ]
        await self._reply(send, resp.status_code, content, out)

    @staticmethod
    async def _reply(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        if not any(k == b"content-type" for k, _ in headers):
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def open_files_for(count: int) -> None:
    """Raise the soft open-file limit to the hard one; each BMC costs a listening socket and a connection
    or two (1,000 BMCs pass the common soft limit of 1,024). Too low a hard limit fails here, clearly."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 3 * count + 256
    if soft < want and soft != resource.RLIM_INFINITY:
        raised = want if hard == resource.RLIM_INFINITY or hard >= want else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < want:
        raise SystemExit(f"{count} BMCs need about {want} open files; the limit is {soft} (raise it: ulimit -n {want})")


async def main(upstream: str, count: int) -> None:
    open_files_for(count)
    secret = os.environ.get("APEIRO_BMCFAN_SECRET", "bench")
    upstream_auth = os.environ.get("APEIRO_BMCFAN_UPSTREAM_AUTH") or None
    async with httpx.AsyncClient(timeout=60) as c:
        headers = {"authorization": upstream_auth} if upstream_auth else {}
        members = (await c.get(f"{upstream}/redfish/v1/Systems", headers=headers)).json()["Members"]
    systems = sorted(m["@odata.id"] for m in members)[:count]
    if len(systems) < count:
        raise SystemExit(f"the emulator serves {len(systems)} systems, {count} asked")
    fan = Fan(upstream, systems, secret, upstream_auth)
    sockets = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        fan.port_index[s.getsockname()[1]] = i
        sockets.append(s)
    server = uvicorn.Server(uvicorn.Config(fan, log_level="warning", lifespan="off", access_log=False))
    # The sockets listen already: connections wait in their backlog until the server accepts them.
    print(json.dumps({"ports": [s.getsockname()[1] for s in sockets]}), flush=True)
    await server.serve(sockets=sockets)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    exit_cleanly(0)
