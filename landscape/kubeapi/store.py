"""The object store: resourceVersions, generations, finalizers, history and watchers.

Single-threaded by design: the HTTP handlers and the simulated controllers share one asyncio event
loop, so every store call is atomic between awaits and a watch registered from a resourceVersion can
never miss an event.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from landscape.kubeapi import errors, patches
from landscape.kubeapi.kinds import AdmissionRequest, Kind, KindRegistry
from landscape.kubeapi.selectors import Matcher

Obj = dict[str, Any]
ObjKey = tuple[tuple[str, str, str], str, str]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    rv: int
    kind: Kind
    namespace: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj


@dataclass(eq=False)
class Watcher:
    kind: Kind
    namespace: str | None
    matcher: Matcher
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    #: Set by a fault: "close" ends the stream cleanly, "reset" aborts the connection.
    cut: str | None = None

    def wants(self, ev: Event) -> bool:
        if ev.kind is not self.kind:
            return False
        if self.namespace is not None and ev.namespace != self.namespace:
            return False
        return self.matcher(ev.obj)


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _meta_cmp(obj: Obj) -> Obj:
    meta = dict(obj.get("metadata", {}))
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


class Store:
    def __init__(
        self, registry: KindRegistry, history_size: int = 2000, clock: Callable[[], str] = now_rfc3339
    ) -> None:
        self.registry = registry
        self.history: deque[Event] = deque()
        self.history_size = history_size
        self.rv = 1000
        #: Every event with rv > floor is still in the history; watching from below it answers 410.
        self.floor = self.rv
        self.objects: dict[ObjKey, Obj] = {}
        self.watchers: set[Watcher] = set()
        self.clock = clock
        #: Called after every committed write (controllers use it to wake up).
        self.listeners: list[Callable[[Event], None]] = []
        #: Side channel between admission plugins and controllers of the same server (not served).
        self.notes: dict[str, Any] = {}

    # --- helpers ---------------------------------------------------------------------------------

    def _key(self, kind: Kind, namespace: str | None, name: str) -> ObjKey:
        return (kind.key(), namespace or "", name)

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _emit(self, kind: Kind, type_: str, obj: Obj) -> None:
        ev = Event(
            int(obj["metadata"]["resourceVersion"]),
            kind,
            obj["metadata"].get("namespace", ""),
            type_,
            copy.deepcopy(obj),
        )
        self.history.append(ev)
        while len(self.history) > self.history_size:
            dropped = self.history.popleft()
            self.floor = dropped.rv
        for w in list(self.watchers):
            if w.wants(ev):
                w.queue.put_nowait(ev)
        for listener in list(self.listeners):
            listener(ev)

    def compact(self) -> int:
        """Drop the whole history (what etcd compaction does); older watches then get 410.

        The revision moves on by one first, as other writes in a real cluster would, so every
        resourceVersion a client has seen so far (bookmarks included) is now too old to watch from.
        """
        self.rv += 1
        self.history.clear()
        self.floor = self.rv
        return self.floor

    def _admit(self, req: AdmissionRequest) -> None:
        for hook in req.kind.admit:
            hook(req)
        for hook in req.kind.validate:
            hook(req)

    def _not_found(self, kind: Kind, name: str) -> errors.ApiError:
        return errors.not_found(kind.plural, name, kind.group)

    # --- reads -----------------------------------------------------------------------------------

    def get(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        obj = self.objects.get(self._key(kind, namespace, name))
        if obj is None:
            raise self._not_found(kind, name)
        return copy.deepcopy(obj)

    def peek(self, kind: Kind, namespace: str | None, name: str) -> Obj | None:
        """The stored object without a copy (for admission hooks and controllers; do not mutate)."""
        return self.objects.get(self._key(kind, namespace, name))

    def iter(self, kind: Kind, namespace: str | None = None) -> Iterator[Obj]:
        for (k, ns, _), obj in self.objects.items():
            if k == kind.key() and (namespace is None or ns == namespace):
                yield obj

    def list_objects(self, kind: Kind, namespace: str | None, matcher: Matcher) -> tuple[list[Obj], int]:
        items = [copy.deepcopy(o) for o in self.iter(kind, namespace) if matcher(o)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, self.rv

    # --- writes ----------------------------------------------------------------------------------

    def create(
        self,
        kind: Kind,
        namespace: str | None,
        body: Obj,
        *,
        dry_run: bool = False,
        manager: str = "",
        apply: bool = False,
    ) -> Obj:
        obj = copy.deepcopy(body)
        if not isinstance(obj, dict):
            raise errors.ApiError(400, "the request body must be a JSON object")
        for decode in kind.decode:
            decode(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.ApiError(400, "metadata must be an object")
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise errors.invalid(
                    kind.kind,
                    kind.group,
                    "",
                    [
                        (
                            "metadata.name",
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
        name = meta["name"]
        if kind.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise errors.ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        obj["apiVersion"] = kind.api_version
        obj["kind"] = kind.kind
        key = self._key(kind, meta.get("namespace"), name)
        if key in self.objects:
            raise errors.already_exists(kind.plural, name, kind.group)
        if kind.status_subresource and not apply:
            obj.pop("status", None)
        for f in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(f, None)
        now = self.clock()
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now
        meta["generation"] = 1
        self._admit(AdmissionRequest("CREATE", kind, obj, None, self, dry_run=dry_run))
        if not apply:
            patches.record_update(None, obj, manager or "unknown", now)
        if dry_run:
            meta["resourceVersion"] = ""
            return obj
        return self._keep(kind, key, obj, "ADDED")

    def update(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str = "",
        precondition_rv: str | None = None,
        apply_manager: str | None = None,
    ) -> Obj:
        key = self._key(kind, namespace, name)
        old = self.objects.get(key)
        if old is None:
            raise self._not_found(kind, name)
        if not isinstance(body, dict):
            raise errors.ApiError(400, "the request body must be a JSON object")
        new = copy.deepcopy(body)
        for decode in kind.decode:
            decode(new)
        bmeta = new.get("metadata") or {}
        if bmeta.get("name") not in (None, name):
            raise errors.ApiError(
                400,
                f"the name of the object ({bmeta.get('name')}) does not match the name on the URL ({name})",
            )
        want_rv = precondition_rv if precondition_rv is not None else bmeta.get("resourceVersion")
        if want_rv and str(want_rv) != old["metadata"]["resourceVersion"]:
            raise errors.conflict(kind.plural, name, kind.group)
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            if kind.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new.setdefault("metadata", {})
            for f in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ):
                if f in old["metadata"]:
                    meta[f] = old["metadata"][f]
                else:
                    meta.pop(f, None)
            new["apiVersion"] = kind.api_version
            new["kind"] = kind.kind
            if old["metadata"].get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
                if added:
                    raise errors.forbidden(
                        kind.plural,
                        name,
                        kind.group,
                        "no new finalizers can be added if the object is being deleted",
                    )
        meta = new["metadata"]
        if _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        self._admit(AdmissionRequest("UPDATE", kind, new, copy.deepcopy(old), self, subresource, dry_run))
        now = self.clock()
        if apply_manager is None:
            patches.record_update(old, new, manager or "unknown", now)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _meta_cmp(new) == _meta_cmp(old):
            return copy.deepcopy(old)  # a no-op write does not bump the resourceVersion
        if dry_run:
            return new
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(kind, key, new)
        return self._keep(kind, key, new, "MODIFIED")

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        manager: str = "",
        force: bool = False,
    ) -> Obj:
        old = self.objects.get(self._key(kind, namespace, name))
        if patch_type == patches.APPLY:
            if not isinstance(patch, dict):
                raise errors.ApiError(400, "an apply patch must be a YAML or JSON object")
            if not manager:
                raise errors.ApiError(400, "PATCH with apply-patch requires the fieldManager query parameter")
            for field_name, want in (("apiVersion", kind.api_version), ("kind", kind.kind)):
                if patch.get(field_name) != want:
                    raise errors.ApiError(
                        400,
                        f"{field_name} must be {want!r} in an apply configuration, got {patch.get(field_name)!r}",
                    )
            if (patch.get("metadata") or {}).get("name") not in (None, name):
                raise errors.ApiError(400, "the name in the apply configuration does not match the URL")
            if old is None:
                if subresource:
                    raise self._not_found(kind, name)
                base = {
                    "apiVersion": kind.api_version,
                    "kind": kind.kind,
                    "metadata": {"name": name, "namespace": namespace},
                }
                obj = patches.server_side_apply(base, patch, manager, force, self.clock())
                return self.create(kind, namespace, obj, dry_run=dry_run, manager=manager, apply=True)
            applied = copy.deepcopy(patch)
            if subresource == "status":
                applied = {k: v for k, v in applied.items() if k in ("apiVersion", "kind", "status", "metadata")}
            elif kind.status_subresource:
                applied.pop("status", None)
            new = patches.server_side_apply(old, applied, manager, force, self.clock())
            precondition_rv, apply_manager = (patch.get("metadata") or {}).get("resourceVersion"), manager
        else:
            new = self._patched(kind, name, old, patch_type, patch)
            precondition_rv, apply_manager = None, None
        return self.update(
            kind,
            namespace,
            name,
            new,
            subresource=subresource,
            dry_run=dry_run,
            manager=manager,
            precondition_rv=precondition_rv,
            apply_manager=apply_manager,
        )

    def _patched(self, kind: Kind, name: str, old: Obj | None, patch_type: str, patch: Any) -> Obj:
        """``old`` with a merge, strategic-merge or JSON patch applied (the resourceVersion it carries
        must still be ``old``'s: a patch that sets another one conflicts)."""
        if old is None:
            raise self._not_found(kind, name)
        base = copy.deepcopy(old)
        if patch_type == patches.MERGE:
            if not isinstance(patch, dict):
                raise errors.ApiError(400, "a merge patch must be a JSON object")
            new = patches.merge_patch(base, patch)
        elif patch_type == patches.STRATEGIC:
            if kind.merge_keys is None:
                raise errors.ApiError(
                    415,
                    f"the body of the request was in an unknown format - accepted media "
                    f"types include: {patches.JSON_PATCH}, {patches.MERGE}, {patches.APPLY}",
                )
            if not isinstance(patch, dict):
                raise errors.ApiError(400, "a strategic merge patch must be a JSON object")
            new = patches.strategic_merge_patch(base, patch, kind.merge_keys)
        elif patch_type == patches.JSON_PATCH:
            new = patches.json_patch(base, patch)
        else:
            raise errors.ApiError(
                415, f"unsupported patch type {patch_type!r}; use one of {', '.join(patches.PATCH_TYPES)}"
            )
        want_rv = (new.get("metadata") or {}).get("resourceVersion")
        if want_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(kind.plural, name, kind.group)
        return new

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        dry_run: bool = False,
        precondition_rv: str | None = None,
        precondition_uid: str | None = None,
    ) -> Obj | None:
        """Returns the object if finalizers keep it (deletionTimestamp set), else None (it is gone)."""
        key = self._key(kind, namespace, name)
        old = self.objects.get(key)
        if old is None:
            raise self._not_found(kind, name)
        if precondition_rv and precondition_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(
                kind.plural, name, kind.group, "Precondition failed: the resourceVersion does not match"
            )
        if precondition_uid and precondition_uid != old["metadata"]["uid"]:
            raise errors.conflict(kind.plural, name, kind.group, "Precondition failed: the UID does not match")
        if old["metadata"].get("deletionTimestamp"):
            return copy.deepcopy(old)
        self._admit(AdmissionRequest("DELETE", kind, None, copy.deepcopy(old), self, dry_run=dry_run))
        if dry_run:
            return None
        if old["metadata"].get("finalizers"):
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = self.clock()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            return self._keep(kind, key, new, "MODIFIED")
        self._remove(kind, key, copy.deepcopy(old))
        return None

    def _keep(self, kind: Kind, key: ObjKey, obj: Obj, event: str) -> Obj:
        """Store ``obj`` under the next resourceVersion and tell the watchers (``event``: ADDED or
        MODIFIED); the caller gets a copy, so that nothing it does changes the stored object."""
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self.objects[key] = obj
        self._emit(kind, event, obj)
        return copy.deepcopy(obj)

    def _remove(self, kind: Kind, key: ObjKey, obj: Obj) -> Obj:
        self.objects.pop(key, None)
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(kind, "DELETED", obj)
        return copy.deepcopy(obj)

    # --- watch -----------------------------------------------------------------------------------

    def watch(
        self, kind: Kind, namespace: str | None, resource_version: str | None, matcher: Matcher
    ) -> tuple[list[Event], Watcher]:
        """Events to replay first, and a registered watcher for what follows. Raises 410 Expired."""
        replay: list[Event] = []
        if not resource_version or resource_version == "0":
            for obj in sorted(self.iter(kind, namespace), key=lambda o: int(o["metadata"]["resourceVersion"])):
                if matcher(obj):
                    replay.append(
                        Event(
                            int(obj["metadata"]["resourceVersion"]),
                            kind,
                            obj["metadata"].get("namespace", ""),
                            "ADDED",
                            copy.deepcopy(obj),
                        )
                    )
        else:
            try:
                since = int(resource_version)
            except ValueError:
                raise errors.ApiError(400, f"invalid resourceVersion {resource_version!r}: not a number") from None
            if since < self.floor:
                raise errors.expired(f"too old resource version: {since} ({self.floor})")
            w = Watcher(kind, namespace, matcher)
            replay = [ev for ev in self.history if ev.rv > since and w.wants(ev)]
        watcher = Watcher(kind, namespace, matcher)
        self.watchers.add(watcher)
        return replay, watcher

    def unwatch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def cut_watches(self, mode: str = "reset") -> int:
        n = 0
        for w in list(self.watchers):
            w.cut = mode
            w.queue.put_nowait(None)
            n += 1
        return n
