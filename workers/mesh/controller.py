"""`apeiro mesh controller`: runs the orders placed in every workspace bound to our APIExport.

It reads the virtual workspace URL from the APIExportEndpointSlice in the provider workspace, lists
and watches each orderable kind across all bound consumers (`.../clusters/*/...`), and reconciles
one object at a time per key (consumer cluster, kind, namespace, name):

1. deleted: cancel the run, wait until Temporal reports it closed, remove our finalizer;
2. no finalizer yet: add it (PUT with resourceVersion; a 409 re-reads);
3. not started: validate (unknown pipeline or bad inputs -> `Ready=False` with each bad field's
   path, no workflow); start `PipelineWorkflow` under `workflow_id()` (USE_EXISTING: a restarted
   controller or a repeated event joins the run it started before);
4. new `spec.approvals[]` entries -> the run's `approve` update (a refusal -> `ApprovalAccepted=False`
   with the validator's message);
5. status from the run's `status` query and its execution state (following continue-as-new: the
   handle has no run id), PUT to the status subresource with resourceVersion, retried on 409;
   an Event per step transition (deterministic names: a repeat is a harmless 409).

A 403 from the virtual workspace means the consumer's APIBinding is gone: the run continues, status
writes for that object stop, and the controller logs one line saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from definitions import queues
from definitions.mesh import FINALIZER, Kind, kinds
from definitions.runs import ApprovalDecision, PipelineRequest, PipelineStatus
from workers.mesh import orders
from workers.mesh.kube import Kube, KubeError, object_path

log = logging.getLogger(__name__)
CLUSTER_ANNOTATION = "kcp.io/cluster"
Key = tuple[str, str, str, str]  # cluster, plural, namespace, name


def catalog_loader() -> Callable[[str], dict[str, Any]]:
    from definitions.library import PipelineLibrary

    library = PipelineLibrary()

    def load(name: str) -> dict[str, Any]:
        if name not in library.names():
            raise KeyError(f"unknown pipeline {name!r}; the catalogue has: {', '.join(library.names())}")
        return library.load(name)

    return load


def catalog_validator() -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    from definitions.catalog import load_catalog
    from definitions.library import PipelineLibrary
    from definitions.validate import validate_definition

    registry = load_catalog()

    def validate(data: dict[str, Any], inputs: dict[str, Any]) -> Any:
        known = PipelineLibrary().call_graph()
        return validate_definition(data, registry, inputs=inputs, known_pipelines=known)

    return validate


@dataclass
class Controller:
    temporal: Client
    http: httpx.AsyncClient
    #: The provider workspace's base URL (`<kcp>/clusters/<path>`), where the endpoint slice lives.
    provider_url: str
    endpoint_slice: str = "orchestrator.apeiro.dev"
    poll_interval: float = 2.0
    workers: int = 4
    load: Callable[[str], dict[str, Any]] = field(default_factory=catalog_loader)
    validate: Callable[[dict[str, Any], dict[str, Any]], Any] = field(default_factory=catalog_validator)
    task_queue: str = queues.PIPELINE
    #: Seconds between catalogue syncs into the bound workspaces (0: do not publish the catalogue).
    catalog_interval: float = 30.0

    def __post_init__(self) -> None:
        self.kinds = {k.plural: k for k in kinds() if k.orderable}
        self.queue: asyncio.Queue[Key] = asyncio.Queue()
        self.queued: set[Key] = set()
        self.busy: set[Key] = set()
        self.gone: set[str] = set()  # consumer clusters whose binding disappeared (logged once)
        self.vw: Kube | None = None
        self.reconciles = 0

    # --- plumbing -------------------------------------------------------------------------------

    async def virtual_workspace(self) -> Kube:
        """The export's virtual workspace URL, from the APIExportEndpointSlice (waits until listed)."""
        provider = Kube(self.http, self.provider_url)
        path = f"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/{self.endpoint_slice}"
        while True:
            try:
                endpoints = ((await provider.get(path)).get("status") or {}).get("endpoints") or []
            except KubeError as exc:
                log.warning("endpoint slice %s not readable yet (%s); retrying", self.endpoint_slice, exc)
                endpoints = []
            if endpoints:
                url = str(endpoints[0]["url"])
                log.info("virtual workspace: %s", url)
                return Kube(self.http, url)
            await asyncio.sleep(self.poll_interval)

    def enqueue(self, key: Key) -> None:
        if key not in self.queued:
            self.queued.add(key)
            self.queue.put_nowait(key)

    async def run(self) -> None:
        self.vw = await self.virtual_workspace()
        tasks = [asyncio.create_task(self.inform(k)) for k in self.kinds.values()]
        tasks += [asyncio.create_task(self.work()) for _ in range(self.workers)]
        if self.catalog_interval > 0:
            from workers.mesh.catalog import publish

            tasks.append(asyncio.create_task(publish(self.vw, self.catalog_interval)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    async def inform(self, kind: Kind) -> None:
        """List then watch one kind across every bound workspace; re-list on 410 or errors."""
        assert self.vw is not None
        everywhere = self.vw.at("*")
        path = object_path(kind.plural, None)
        while True:
            try:
                listed = await everywhere.get(path)
                for obj in listed.get("items") or []:
                    self.enqueue(self.key_of(kind, obj))
                rv = str(listed["metadata"]["resourceVersion"])
                while True:
                    async for event in everywhere.watch(path, rv):
                        obj = event["object"]
                        rv = str(obj["metadata"].get("resourceVersion") or rv)
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self.enqueue(self.key_of(kind, obj))
                    # the stream ended (timeout, binding set changed, cut): re-list to see new workspaces
                    break
            except KubeError as exc:
                level = logging.INFO if exc.code == 410 else logging.WARNING
                log.log(level, "watch of %s: %s; re-listing", kind.plural, exc)
                await asyncio.sleep(0.2 if exc.code == 410 else self.poll_interval)

    @staticmethod
    def key_of(kind: Kind, obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        cluster = (meta.get("annotations") or {}).get(CLUSTER_ANNOTATION, "")
        return (cluster, kind.plural, meta.get("namespace", ""), meta["name"])

    async def work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = await self.queue.get()
            self.queued.discard(key)
            if key in self.busy:
                loop.call_later(0.1, self.enqueue, key)
                continue
            self.busy.add(key)
            try:
                delay = await self.reconcile(key)
            except Exception as exc:  # one order's failure never stops the others
                log.warning("reconcile %s failed: %s; retrying", "/".join(key), exc)
                delay = self.poll_interval
            finally:
                self.busy.discard(key)
            if delay is not None:
                loop.call_later(delay, self.enqueue, key)

    # --- one order ------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        """Bring one order a step closer; the delay until the next look (None: wait for an event)."""
        assert self.vw is not None
        self.reconciles += 1
        cluster, plural, namespace, name = key
        kind = self.kinds[plural]
        api = self.vw.at(cluster)
        path = object_path(plural, namespace or None, name)
        try:
            obj = await api.get(path)
        except KubeError as exc:
            return self._unreachable(exc, key)
        meta = obj["metadata"]
        wf_id = orders.workflow_id(cluster, kind, meta["uid"])
        handle = self.temporal.get_workflow_handle(wf_id)
        if meta.get("deletionTimestamp"):
            return await self._finish_delete(api, path, obj, handle)
        if FINALIZER not in (meta.get("finalizers") or []):
            obj["metadata"]["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
            try:
                await api.put(path, obj)
            except KubeError as exc:
                return 0.0 if exc.code == 409 else self._unreachable(exc, key)
            return 0.0
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        generation = int(meta.get("generation") or 1)
        if not status.get("specHash"):
            plan = orders.plan(kind, spec, self.load, self.validate)
            if plan.problems:
                new = orders.invalid_status(status, plan.problems, generation)
                return await self._write(api, path, obj, new, key, events=False)
            await self._start(handle, plan, cluster, kind)
        return await self._follow(api, path, obj, handle, key)

    async def _start(self, handle: WorkflowHandle[Any, Any], plan: orders.Plan, cluster: str, kind: Kind) -> None:
        request = PipelineRequest(definition=plan.definition, inputs=plan.inputs, requested_by=f"mesh:{cluster}")
        try:
            await self.temporal.start_workflow(
                "PipelineWorkflow",
                request,
                id=handle.id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            log.info("order %s (%s) -> workflow %s", handle.id, kind.kind, handle.id)
        except WorkflowAlreadyStartedError:
            pass  # it ran and closed already: the status below reports how it ended

    async def _follow(
        self, api: Kube, path: str, obj: dict[str, Any], handle: WorkflowHandle[Any, Any], key: Key
    ) -> float | None:
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        desc = await handle.describe()
        execution = desc.status.name if desc.status else "RUNNING"
        run: PipelineStatus | None = None
        with contextlib.suppress(RPCError, Exception):
            run = await handle.query("status", result_type=PipelineStatus)
        approvals = spec.get("approvals") or []
        old_sent = sent = int(status.get("approvalsSent") or 0)
        refused: list[str] = []
        for entry in approvals[sent:]:
            refused += await self._approve(handle, entry, execution)
            sent += 1
        if sent == old_sent:
            refused = _still_refused(status)
        else:
            with contextlib.suppress(RPCError, Exception):
                run = await handle.query("status", result_type=PipelineStatus)
        started_from = status.get("specHash") or orders.spec_hash(spec)
        new = orders.order_status(
            status,
            wf_id=handle.id,
            run_id=desc.run_id,
            execution=execution,
            run=run,
            generation=int(obj["metadata"].get("generation") or 1),
            started_from=started_from,
            refused=refused,
            approvals_sent=sent,
            edited=orders.spec_hash(spec) != started_from,
        )
        delay = await self._write(api, path, obj, new, key, events=True)
        if delay is None and orders.Phase(new["phase"]) not in orders.TERMINAL:
            return self.poll_interval
        return delay

    async def _approve(self, handle: WorkflowHandle[Any, Any], entry: dict[str, Any], execution: str) -> list[str]:
        who = f"{entry.get('step')} by {entry.get('approver')}"
        if execution != "RUNNING":
            return [f"{who}: the run has ended ({execution.lower()})"]
        try:
            decision = ApprovalDecision.model_validate(entry)
            await handle.execute_update("approve", decision)
        except WorkflowUpdateFailedError as exc:
            return [f"{who}: {getattr(exc.cause, 'message', None) or exc.cause}"]
        except (ValueError, RPCError) as exc:
            return [f"{who}: {exc}"]
        return []

    async def _write(
        self, api: Kube, path: str, obj: dict[str, Any], new: dict[str, Any], key: Key, *, events: bool
    ) -> float | None:
        old = obj.get("status") or {}
        if new == old:
            return None
        for _ in range(5):
            try:
                await api.put(f"{path}/status", {**obj, "status": new})
                break
            except KubeError as exc:
                if exc.code != 409:
                    return self._unreachable(exc, key)
                try:
                    obj = await api.get(path)  # someone else wrote: same status onto the fresh object
                except KubeError as again:
                    return self._unreachable(again, key)
        else:
            return 0.5
        if events:
            for step in orders.transitions(old.get("steps") or [], new.get("steps") or []):
                await self._event(api, obj, step)
        return None

    async def _event(self, api: Kube, obj: dict[str, Any], step: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        warning = step["state"] in ("failed", "cancelled")
        now = orders.now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{step['name']}.{step['state']}".lower()[:253],
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta["uid"],
            },
            "reason": f"Step{step['state'].capitalize()}",
            "message": f"step {step['name']} ({step.get('uses', '')}) is {step['state']}"
            + (f": {step['message']}" if step.get("message") else ""),
            "type": "Warning" if warning else "Normal",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "apeiro-mesh-controller"},
        }
        try:
            await api.create(object_path("events", namespace, group=""), event)
        except KubeError as exc:
            if exc.code != 409:  # 409: this transition was reported before a restart
                log.warning("event for %s not written: %s", meta["name"], exc)

    async def _finish_delete(
        self, api: Kube, path: str, obj: dict[str, Any], handle: WorkflowHandle[Any, Any]
    ) -> float | None:
        if FINALIZER not in (obj["metadata"].get("finalizers") or []):
            return None
        try:
            desc = await handle.describe()
            running = desc.status is not None and desc.status.name == "RUNNING"
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            running = False  # never started (invalid order, or deleted before the start)
        if running:
            await handle.cancel()
            return 0.5  # wait until Temporal reports the run closed
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != FINALIZER]
        try:
            await api.put(path, obj)
        except KubeError as exc:
            if exc.code == 409:
                return 0.0
            if exc.code != 404:
                raise
        log.info("order %s: run ended, finalizer removed", handle.id)
        return None

    def _unreachable(self, exc: KubeError, key: Key) -> float | None:
        cluster = key[0]
        if exc.code == 404:
            return None  # deleted: nothing left to do
        if exc.code == 403:
            if cluster not in self.gone:
                self.gone.add(cluster)
                log.warning(
                    "workspace %s no longer binds our APIExport: its runs continue, status writes stop (%s)",
                    cluster,
                    "/".join(key[1:]),
                )
            return None
        log.warning("order %s: API server answered %s; retrying", "/".join(key), exc)
        return self.poll_interval


def _still_refused(status: dict[str, Any]) -> list[str]:
    """Keep a refusal visible until a newer approval is sent."""
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "ApprovalAccepted"), None)
    if cond and cond.get("status") == "False":
        return [str(cond.get("message") or "refused")]
    return []
