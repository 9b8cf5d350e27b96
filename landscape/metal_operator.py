"""Simulated IronCore metal-operator for the landscape API server (plugin ``landscape.metal_operator``).

What the real one does (ironcore-dev/metal-operator docs: concepts/bmcs, servers, serverclaims; API
types at 7673f17b), against real Redfish (the landscape's sushy emulator):

- The kinds come from the landscape's own CRDs (``landscape/crds/metal.ironcore.dev.yaml``); they
  replace the simplified kinds of ``landscape.kubeapi.extra_kinds`` when both are installed.
- A ``BMC`` (``spec.access.ip`` or ``spec.endpointRef`` -> ``Endpoint.spec.ip``, ``spec.protocol``
  scheme and port, credentials from the ``BMCSecret`` in ``spec.bmcSecretRef``) is reached over
  Redfish; its systems become ``Server`` objects named ``<bmc>-system-<index>`` (``spec.systemUUID``,
  ``spec.systemURI``, ``spec.bmcRef``, owner reference to the BMC). metal-operator alone writes their
  status: ``state`` Initial -> Discovery -> Available (or Error), ``powerState``, inventory
  (manufacturer, model, serial, memory, NICs). An unreachable BMC or bad credentials: BMC ``state``
  Error with a ``Ready`` False condition naming why.
- A ``ServerClaim`` binds an Available, unclaimed server (``spec.serverRef`` or
  ``spec.serverSelector.matchLabels``): the server gets ``spec.serverClaimRef`` and ``spec.power``,
  state Reserved, the claim ``status.phase`` Bound, and the server is powered as the claim asks (a
  Redfish reset). No match: phase Unbound, retried when servers change. Deleting the claim releases
  the server (power off, claim reference removed, Available again).
- Power state is re-read from Redfish every ``metal.pollSeconds`` (default 1).

Fault (``POST /admin/metal/faults {fault: "server-error", server: NAME}``; ``DELETE`` clears): the
server reports state Error. Not modelled: ServerBootConfiguration (image boot), BIOS/firmware kinds.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.kinds import Kind
from landscape.kubeapi.store import Event, Store, now_rfc3339

log = logging.getLogger(__name__)

GROUP = "metal.ironcore.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CRDS = Path(__file__).resolve().parent / "crds" / "metal.ironcore.dev.yaml"
MANAGER = "metal-operator"


class BmcError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _condition(ctype: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
    }


@dataclass
class MetalOperator:
    store: Store
    poll_seconds: float = 1.0
    discovery_seconds: float = 0.2
    error_servers: set[str] = field(default_factory=set)
    queue: asyncio.Queue[tuple[str, str, str]] = field(default_factory=asyncio.Queue)

    def kind(self, plural: str) -> Kind:
        kind = self.store.registry.get(GROUP, VERSION, plural)
        if kind is None:
            raise LookupError(f"{plural}.{GROUP} is not served: load metal-operator's CRDs")
        return kind

    def on_event(self, ev: Event) -> None:
        if ev.kind.group == GROUP and ev.kind.plural in ("bmcs", "bmcsecrets", "serverclaims", "servers", "endpoints"):
            self.queue.put_nowait((ev.kind.plural, ev.type, f"{ev.namespace}/{ev.obj['metadata']['name']}"))

    async def run(self) -> None:
        self.store.listeners.append(self.on_event)
        poller = asyncio.create_task(self.poll())
        try:
            while True:
                plural, type_, key = await self.queue.get()
                try:
                    await self.handle(plural, type_, key)
                except Exception:
                    log.exception("metal-operator: reconciling %s %s failed", plural, key)
        finally:
            poller.cancel()

    async def handle(self, plural: str, type_: str, key: str) -> None:
        ns, _, name = key.partition("/")
        if plural == "bmcs" and type_ == "ADDED":
            await self.reconcile_bmc(name)
        elif plural in ("bmcsecrets", "endpoints"):
            for bmc in list(self.store.iter(self.kind("bmcs"))):
                if (bmc.get("status") or {}).get("state") != "Enabled":
                    await self.reconcile_bmc(bmc["metadata"]["name"])
        elif plural == "serverclaims":
            if type_ == "DELETED":
                await self.release(ns, name)
            else:
                await self.reconcile_claim(ns, name)
        elif plural == "servers" and type_ == "MODIFIED":
            for claim in list(self.store.iter(self.kind("serverclaims"))):
                if (claim.get("status") or {}).get("phase") != "Bound":
                    await self.reconcile_claim(claim["metadata"]["namespace"], claim["metadata"]["name"])

    # --- Redfish ----------------------------------------------------------------------------------

    def _bmc_access(self, bmc: dict[str, Any]) -> tuple[str, tuple[str, str]]:
        spec = bmc.get("spec") or {}
        ip = (spec.get("access") or {}).get("ip")
        if not ip and spec.get("endpointRef"):
            endpoint = self.store.peek(self.kind("endpoints"), None, spec["endpointRef"].get("name", ""))
            ip = ((endpoint or {}).get("spec") or {}).get("ip")
        if not ip:
            raise BmcError("EndpointNotFound", "no IP: spec.access.ip or the Endpoint's spec.ip is needed")
        proto = spec.get("protocol") or {}
        url = f"{proto.get('scheme') or 'http'}://{ip}:{proto.get('port')}"
        secret = self.store.peek(self.kind("bmcsecrets"), None, (spec.get("bmcSecretRef") or {}).get("name", ""))
        if secret is None:
            raise BmcError("BMCSecretNotFound", f"BMCSecret {(spec.get('bmcSecretRef') or {}).get('name')} not found")
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        data.update(secret.get("stringData") or {})
        if "username" not in data or "password" not in data:
            raise BmcError("BMCSecretInvalid", "the BMCSecret needs username and password")
        return url, (data["username"], data["password"])

    async def _get(self, client: httpx.AsyncClient, path: str) -> dict[str, Any]:
        resp = await client.get(path)
        if resp.status_code == 401:
            raise BmcError("AuthenticationFailed", f"{path}: 401 Unauthorized (check the BMCSecret)")
        if resp.status_code >= 400:
            raise BmcError("RedfishError", f"{path}: HTTP {resp.status_code}")
        result: dict[str, Any] = resp.json()
        return result

    def _client(self, bmc: dict[str, Any]) -> httpx.AsyncClient:
        url, auth = self._bmc_access(bmc)
        return httpx.AsyncClient(base_url=url, auth=auth, timeout=10.0, verify=False)

    # --- BMC -> Servers ---------------------------------------------------------------------------

    def _status(self, plural: str, ns: str | None, name: str, mutate: Any) -> dict[str, Any] | None:
        kind = self.kind(plural)
        try:
            obj = self.store.get(kind, ns, name)
        except ApiError:
            return None
        mutate(obj.setdefault("status", {}))
        return self.store.update(kind, ns, name, obj, subresource="status", manager=MANAGER)

    def _spec(self, plural: str, ns: str | None, name: str, mutate: Any) -> None:
        kind = self.kind(plural)
        obj = self.store.get(kind, ns, name)
        mutate(obj.setdefault("spec", {}))
        self.store.update(kind, ns, name, obj, manager=MANAGER)

    async def reconcile_bmc(self, name: str) -> None:
        bmc = self.store.peek(self.kind("bmcs"), None, name)
        if bmc is None:
            return
        try:
            async with self._client(bmc) as client:
                root = await self._get(client, "/redfish/v1/Systems")
                systems = []
                for member in root.get("Members") or []:
                    system = await self._get(client, member["@odata.id"])
                    nics = []
                    if system.get("EthernetInterfaces"):
                        coll = await self._get(client, system["EthernetInterfaces"]["@odata.id"])
                        for nic in coll.get("Members") or []:
                            detail = await self._get(client, nic["@odata.id"])
                            if detail.get("MACAddress"):
                                nics.append(
                                    {
                                        "name": str(detail.get("Id") or detail.get("Name")),
                                        "macAddress": detail["MACAddress"],
                                    }
                                )
                    systems.append((member["@odata.id"], system, nics))
        except (BmcError, httpx.HTTPError) as exc:
            reason = exc.reason if isinstance(exc, BmcError) else "BMCUnreachable"
            message = str(exc) or type(exc).__name__

            def failed(s: dict[str, Any]) -> None:
                s["state"] = "Error"
                s["conditions"] = [_condition("Ready", False, reason, message)]

            self._status("bmcs", None, name, failed)
            return

        def enabled(s: dict[str, Any]) -> None:
            s["state"] = "Enabled"
            s["ip"] = ((bmc.get("spec") or {}).get("access") or {}).get("ip", s.get("ip", ""))
            s["conditions"] = [_condition("Ready", True, "BMCReachable", f"{len(systems)} system(s) found")]

        self._status("bmcs", None, name, enabled)
        for index, (uri, system, nics) in enumerate(systems):
            await self._ensure_server(bmc, index, uri, system, nics)

    async def _ensure_server(
        self, bmc: dict[str, Any], index: int, uri: str, system: dict[str, Any], nics: list[dict[str, Any]]
    ) -> None:
        name = f"{bmc['metadata']['name']}-system-{index}"
        kind = self.kind("servers")
        if self.store.peek(kind, None, name) is None:
            self.store.create(
                kind,
                None,
                {
                    "apiVersion": API_VERSION,
                    "kind": "Server",
                    "metadata": {
                        "name": name,
                        "ownerReferences": [
                            {
                                "apiVersion": API_VERSION,
                                "kind": "BMC",
                                "name": bmc["metadata"]["name"],
                                "uid": bmc["metadata"]["uid"],
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    "spec": {
                        "systemUUID": str(system.get("UUID", "")),
                        "systemURI": uri,
                        "bmcRef": {"name": bmc["metadata"]["name"]},
                    },
                },
                manager=MANAGER,
            )
        self._status("servers", None, name, lambda s: s.update(state="Initial"))
        await asyncio.sleep(self.discovery_seconds)
        self._status("servers", None, name, lambda s: s.update(state="Discovery"))
        await asyncio.sleep(self.discovery_seconds)
        memory = (system.get("MemorySummary") or {}).get("TotalSystemMemoryGiB")

        def available(s: dict[str, Any]) -> None:
            s.update(
                state="Error" if name in self.error_servers else "Available",
                powerState=str(system.get("PowerState") or "Off"),
                manufacturer=str(system.get("Manufacturer") or ""),
                model=str(system.get("Model") or ""),
                serialNumber=str(system.get("SerialNumber") or ""),
                sku=str(system.get("SKU") or ""),
                biosVersion=str(system.get("BiosVersion") or ""),
                networkInterfaces=nics,
            )
            if isinstance(memory, (int, float)) and memory:
                s["totalSystemMemory"] = f"{int(memory)}Gi"

        self._status("servers", None, name, available)

    # --- claims -----------------------------------------------------------------------------------

    def _pick(self, claim: dict[str, Any]) -> dict[str, Any] | None:
        spec = claim.get("spec") or {}
        wanted = (spec.get("serverRef") or {}).get("name")
        labels = ((spec.get("serverSelector") or {}).get("matchLabels")) or {}
        for server in sorted(self.store.iter(self.kind("servers")), key=lambda s: s["metadata"]["name"]):
            if wanted and server["metadata"]["name"] != wanted:
                continue
            have = server["metadata"].get("labels") or {}
            if any(have.get(k) != v for k, v in labels.items()):
                continue
            sspec, status = server.get("spec") or {}, server.get("status") or {}
            if status.get("state") == "Available" and not sspec.get("serverClaimRef") and not sspec.get("unclaimable"):
                return server
        return None

    async def reconcile_claim(self, ns: str, name: str) -> None:
        claim = self.store.peek(self.kind("serverclaims"), ns, name)
        if claim is None:
            return
        spec = claim.get("spec") or {}
        bound = self._bound_server(ns, name)
        if bound is None:
            server = self._pick(claim)
            if server is None:
                if (claim.get("status") or {}).get("phase") != "Unbound":
                    self._status("serverclaims", ns, name, lambda s: s.update(phase="Unbound"))
                return
            sname = server["metadata"]["name"]

            def bind(s: dict[str, Any]) -> None:
                s["serverClaimRef"] = {"name": name, "namespace": ns}
                s["power"] = spec.get("power", "On")

            self._spec("servers", None, sname, bind)
            self._status("servers", None, sname, lambda s: s.update(state="Reserved"))
            if not spec.get("serverRef"):
                self._spec("serverclaims", ns, name, lambda s: s.update(serverRef={"name": sname}))
            self._status("serverclaims", ns, name, lambda s: s.update(phase="Bound"))
            bound = self.store.peek(self.kind("servers"), None, sname)
        if bound is not None:
            await self._power(bound, str(spec.get("power", "On")))

    def _bound_server(self, ns: str, name: str) -> dict[str, Any] | None:
        for server in self.store.iter(self.kind("servers")):
            ref = (server.get("spec") or {}).get("serverClaimRef") or {}
            if ref.get("name") == name and ref.get("namespace") == ns:
                return server
        return None

    async def release(self, ns: str, name: str) -> None:
        server = self._bound_server(ns, name)
        if server is None:
            return
        sname = server["metadata"]["name"]
        await self._power(server, "Off")

        def unbind(s: dict[str, Any]) -> None:
            s.pop("serverClaimRef", None)
            s["power"] = "Off"

        self._spec("servers", None, sname, unbind)
        self._status("servers", None, sname, lambda s: s.update(state="Available"))

    async def _power(self, server: dict[str, Any], want: str) -> None:
        bmc = self.store.peek(self.kind("bmcs"), None, ((server.get("spec") or {}).get("bmcRef") or {}).get("name", ""))
        uri = (server.get("spec") or {}).get("systemURI")
        if bmc is None or not uri:
            return
        current = (server.get("status") or {}).get("powerState")
        if (want == "On") == (current == "On"):
            return
        reset = "On" if want == "On" else "ForceOff"
        try:
            async with self._client(bmc) as client:
                resp = await client.post(f"{uri}/Actions/ComputerSystem.Reset", json={"ResetType": reset})
                if resp.status_code >= 400:
                    log.warning("metal-operator: %s reset %s answered %s", uri, reset, resp.status_code)
        except (BmcError, httpx.HTTPError) as exc:
            log.warning("metal-operator: powering %s %s failed: %s", server["metadata"]["name"], want, exc)

    async def poll(self) -> None:
        """Re-read each server's power state from Redfish (metal-operator's periodic resync)."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                for server in list(self.store.iter(self.kind("servers"))):
                    await self._refresh(server)
            except Exception:
                log.exception("metal-operator: power poll failed")

    async def _refresh(self, server: dict[str, Any]) -> None:
        name = server["metadata"]["name"]
        if name in self.error_servers and (server.get("status") or {}).get("state") != "Error":
            self._status("servers", None, name, lambda s: s.update(state="Error"))
            return
        bmc = self.store.peek(self.kind("bmcs"), None, ((server.get("spec") or {}).get("bmcRef") or {}).get("name", ""))
        uri = (server.get("spec") or {}).get("systemURI")
        if bmc is None or not uri or (server.get("status") or {}).get("state") in (None, "Initial", "Discovery"):
            return
        try:
            async with self._client(bmc) as client:
                power = str((await self._get(client, uri)).get("PowerState") or "")
        except (BmcError, httpx.HTTPError):
            return
        if power and power != (server.get("status") or {}).get("powerState"):
            self._status("servers", None, name, lambda s: s.update(powerState=power))


def install(server: Any) -> MetalOperator:
    existing = server.registry.get(GROUP, VERSION, "servers")
    if existing is None or not existing.crd:
        server.crds.load([server.plugin_config.get("metal.crds") or CRDS])
    operator = MetalOperator(
        server.store,
        poll_seconds=float(server.plugin_config.get("metal.pollSeconds", 1.0)),
        discovery_seconds=float(server.plugin_config.get("metal.discoverySeconds", 0.2)),
    )
    server.metal_operator = operator

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            operator.error_servers.clear()
        elif request.method == "POST":
            body = await request.json()
            if body.get("fault") != "server-error" or not body.get("server"):
                return JSONResponse({"error": "want {fault: server-error, server: NAME}"}, status_code=400)
            operator.error_servers.add(str(body["server"]))
        return JSONResponse({"serverErrors": sorted(operator.error_servers)})

    server.admin_routes.append(Route("/admin/metal/faults", faults, methods=["GET", "POST", "DELETE"]))
    server.background.append(operator.run)
    return operator
