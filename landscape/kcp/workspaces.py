"""Logical clusters and the controllers kcp runs on them (workspaces, bindings, endpoint slices).

kcp behaviour followed here (kcp docs: "Workspaces", "Exporting and Binding APIs", "APIExport
virtual workspace"):

- A `Workspace` created in workspace P names the child logical cluster `P:<name>`; it becomes
  `Ready` with `spec.URL` pointing at `/clusters/<path>` and `spec.cluster` its logical cluster name.
- Every object carries the annotation `kcp.io/cluster` with its logical cluster name.
- An `APIBinding` (`spec.reference.export: {path, name}`) binds the export's resources into the
  consumer: each `APIResourceSchema` the export names is served there (phase `Bound`,
  `status.boundResources`); a missing export leaves it in phase `Binding` with a False condition.
- An `APIExportEndpointSlice` lists the export's virtual workspace URL in `status.endpoints`
  (`<base>/services/apiexport/<logical cluster>/<export>`); clients append `/clusters/<name or *>`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from landscape.kcp.kinds import APIS, TENANCY
from landscape.kcp.kinds import crds as kcp_crds
from landscape.kubeapi import crd as crds
from landscape.kubeapi.app import ApiServer, make_app
from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.kinds import Kind
from landscape.kubeapi.store import Store

log = logging.getLogger(__name__)

CLUSTER_ANNOTATION = "kcp.io/cluster"
BOUND_LABEL = "apis.kcp.io/bound-crd"


class Clock:
    """One resourceVersion sequence for every logical cluster (kcp's shards share etcd's revision)."""

    def __init__(self) -> None:
        self.rv = 1000

    def next(self) -> int:
        self.rv += 1
        return self.rv


class ClusterStore(Store):
    """A Store that draws resourceVersions from the shared clock and stamps `kcp.io/cluster`."""

    def __init__(self, server: ApiServer, clock: Clock, cluster: str) -> None:
        super().__init__(server.registry, history_size=server.history_size)
        self.clock_rv = clock
        self.cluster = cluster
        self.rv = self.floor = clock.rv

    def _next_rv(self) -> int:
        self.rv = self.clock_rv.next()
        return self.rv

    def create(self, kind: Kind, namespace: str | None, body: Any, **kw: Any) -> dict[str, Any]:
        if isinstance(body, dict) and isinstance(body.get("metadata", {}), dict):
            body = copy.deepcopy(body)
            body.setdefault("metadata", {}).setdefault("annotations", {})[CLUSTER_ANNOTATION] = self.cluster
        return super().create(kind, namespace, body, **kw)


def logical_name(path: str) -> str:
    """kcp names logical clusters with a short hash; `root` keeps its name."""
    return path if path == "root" else hashlib.sha256(path.encode()).hexdigest()[:16]


@dataclass
class Workspace:
    path: str
    name: str
    server: ApiServer
    app: Any

    @property
    def store(self) -> Store:
        return self.server.store

    def kind(self, group: str, version: str, plural: str) -> Kind:
        k = self.server.registry.get(group, version, plural)
        if k is None:
            raise ApiError(404, f"the server could not find the requested resource ({plural}.{group})")
        return k


@dataclass
class Binding:
    """A consumer workspace's bound export, as the virtual workspace sees it."""

    consumer: str  # logical cluster name
    export_cluster: str
    export: str
    resources: set[tuple[str, str]] = field(default_factory=set)  # (group, plural)
    claims: set[tuple[str, str]] = field(default_factory=set)  # accepted permission claims
    name: str = ""  # the APIBinding's name (the virtual workspace shows the provider this binding, read-only)


class Kcp:
    """Every logical cluster, by path and by name, and the reconcilers that connect them."""

    def __init__(self, base_url: str = "http://127.0.0.1") -> None:
        self.base_url = base_url
        self.clock = Clock()
        self.by_path: dict[str, Workspace] = {}
        self.by_name: dict[str, Workspace] = {}
        #: (consumer cluster, binding name) -> Binding
        self.bindings: dict[tuple[str, str], Binding] = {}
        #: Called when the set of bindings changes (the virtual workspace ends wildcard watches).
        self.on_bindings_changed: list[Any] = []
        self.add("root")

    # --- workspaces -----------------------------------------------------------------------------

    def add(self, path: str) -> Workspace:
        if path in self.by_path:
            return self.by_path[path]
        name = logical_name(path)
        server = ApiServer()
        server.store = ClusterStore(server, self.clock, name)
        server.crds = crds.CrdServer(server.store)
        for doc in kcp_crds():
            server.store.create(server.crds.kind, None, doc, manager="kcp")
        ws = Workspace(path, name, server, make_app(server))
        self.by_path[path] = self.by_name[name] = ws
        return ws

    def get(self, path_or_name: str) -> Workspace:
        ws = self.by_path.get(path_or_name) or self.by_name.get(path_or_name)
        if ws is None:
            raise ApiError(404, f"workspace {path_or_name!r} not found")
        return ws

    # --- reconcile ------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Bring every workspace's kcp objects to their observed state (run after each write)."""
        before = {k: (b.resources, b.claims) for k, b in self.bindings.items()}
        for ws in list(self.by_path.values()):
            self._workspaces(ws)
        seen: set[tuple[str, str]] = set()
        for ws in list(self.by_path.values()):
            self._endpoint_slices(ws)
            seen |= self._bindings(ws)
        for key in set(self.bindings) - seen:
            log.info("APIBinding %s in %s is gone: the virtual workspace stops serving it", key[1], key[0])
            del self.bindings[key]
        after = {k: (b.resources, b.claims) for k, b in self.bindings.items()}
        if before != after:
            for fn in self.on_bindings_changed:
                fn()

    def _write_status(self, ws: Workspace, kind: Kind, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if obj.get("status") == status:
            return
        body = {**obj, "status": status}
        ws.store.update(kind, None, obj["metadata"]["name"], body, subresource="status", manager="kcp")

    def _workspaces(self, ws: Workspace) -> None:
        kind = ws.kind(TENANCY, "v1alpha1", "workspaces")
        for obj in list(ws.store.iter(kind)):
            child = self.add(f"{ws.path}:{obj['metadata']['name']}")
            spec = obj.get("spec") or {}
            if spec.get("URL") != f"{self.base_url}/clusters/{child.path}" or spec.get("cluster") != child.name:
                body = copy.deepcopy(obj)
                body["spec"] = {**spec, "URL": f"{self.base_url}/clusters/{child.path}", "cluster": child.name}
                ws.store.update(kind, None, obj["metadata"]["name"], body, manager="kcp")
                obj = ws.store.get(kind, None, obj["metadata"]["name"])
            self._write_status(ws, kind, obj, {"phase": "Ready"})

    def _endpoint_slices(self, ws: Workspace) -> None:
        kind = ws.kind(APIS, "v1alpha1", "apiexportendpointslices")
        for obj in list(ws.store.iter(kind)):
            ref = (obj.get("spec") or {}).get("export") or {}
            try:
                owner = self.get(ref.get("path") or ws.path)
                owner.store.get(owner.kind(APIS, "v1alpha2", "apiexports"), None, ref.get("name", ""))
            except ApiError as err:
                status = {"conditions": [_condition("APIExportValid", "False", "APIExportNotFound", err.message)]}
            else:
                url = f"{self.base_url}/services/apiexport/{owner.name}/{ref['name']}"
                status = {"endpoints": [{"url": url}], "conditions": [_condition("APIExportValid", "True", "", "")]}
            self._write_status(ws, kind, obj, status)

    def _bindings(self, ws: Workspace) -> set[tuple[str, str]]:
        kind = ws.kind(APIS, "v1alpha2", "apibindings")
        seen = set()
        for obj in list(ws.store.iter(kind)):
            name = obj["metadata"]["name"]
            if obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                binding, bound = self._bind(ws, obj)
            except ApiError as err:
                status = {
                    "phase": "Binding",
                    "conditions": [_condition("APIExportValid", "False", "APIExportNotFound", err.message)],
                }
                self._write_status(ws, kind, obj, status)
                continue
            self.bindings[(ws.name, name)] = binding
            seen.add((ws.name, name))
            status = {
                "phase": "Bound",
                "apiExportClusterName": binding.export_cluster,
                "boundResources": bound,
                "conditions": [_condition("Ready", "True", "", "")],
            }
            self._write_status(ws, kind, obj, status)
        return seen

    def _bind(self, ws: Workspace, obj: dict[str, Any]) -> tuple[Binding, list[dict[str, Any]]]:
        ref = ((obj.get("spec") or {}).get("reference") or {}).get("export") or {}
        if not ref.get("name"):
            raise ApiError(422, "spec.reference.export.name is required")
        owner = self.get(ref.get("path") or ws.path)
        export = owner.store.get(owner.kind(APIS, "v1alpha2", "apiexports"), None, ref["name"])
        schema_kind = owner.kind(APIS, "v1alpha1", "apiresourceschemas")
        binding = Binding(ws.name, owner.name, ref["name"], name=obj["metadata"]["name"])
        bound = []
        for res in (export.get("spec") or {}).get("resources") or []:
            schema = owner.store.get(schema_kind, None, res["schema"])
            self._serve(ws, schema)
            binding.resources.add((res["group"], res["name"]))
            bound.append(
                {
                    "group": res["group"],
                    "resource": res["name"],
                    "schema": {"name": res["schema"], "UID": schema["metadata"]["uid"]},
                    "storageVersions": [v["name"] for v in schema["spec"]["versions"] if v.get("storage")],
                }
            )
        claimed = {
            (c.get("group", ""), c["resource"]) for c in (export.get("spec") or {}).get("permissionClaims") or []
        }
        for c in (obj.get("spec") or {}).get("permissionClaims") or []:
            key = (c.get("group", ""), c.get("resource", ""))
            if c.get("state") == "Accepted" and key in claimed:
                binding.claims.add(key)
        return binding, bound

    def _serve(self, ws: Workspace, schema: dict[str, Any]) -> None:
        """Serve an APIResourceSchema's kind in the consumer (kcp's bound CRD)."""
        spec = schema["spec"]
        name = f"{spec['names']['plural']}.{spec['group']}"
        if ws.store.peek(ws.server.crds.kind, None, name) is not None:
            return
        versions = []
        for v in spec["versions"]:
            v = copy.deepcopy(v)
            v["schema"] = {"openAPIV3Schema": v.get("schema") or {"type": "object"}}
            versions.append(v)
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "labels": {BOUND_LABEL: "true"}},
            "spec": {"group": spec["group"], "names": spec["names"], "scope": spec["scope"], "versions": versions},
        }
        ws.store.create(ws.server.crds.kind, None, crd, manager="kcp")

    def bound(self, export_cluster: str, export: str) -> list[Binding]:
        return [b for b in self.bindings.values() if b.export_cluster == export_cluster and b.export == export]


def _condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    cond = {"type": type_, "status": status}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond
