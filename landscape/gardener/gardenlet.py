"""A simulated gardenlet: moves Shoots through Create/Reconcile/Delete operations.

It reacts to store events (no polling), writes `status` through the status subresource like the real
gardenlet, and sets `status.observedGeneration` when an operation starts, so right after a spec
change the object still shows the previous Succeeded operation with an older observedGeneration:
exactly the window in which "state == Succeeded" alone reports ready too early.

Time is simulated: every task takes ``task_seconds`` of simulated time, and ``speed`` simulated
seconds pass per real second (default 1200: a 10-task create takes 0.5 s).

Faults (per shoot or for all, counted): ``quota-exceeded``, ``rate-limited``, ``unauthorized``,
``configuration`` (straight to Failed with Gardener's error codes), ``error`` (Error with a retryable
code, then Gardener's own retry succeeds), ``stuck`` (Processing forever at a task), ``flap``
(EveryNodeReady goes False for a while after success).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from landscape.gardener import day2
from landscape.gardener.admission import FORCED_NOTE
from landscape.gardener.kinds import CONDITION_TYPES, CORE, FINALIZER, OPERATION
from landscape.gardener.rules import RuleError, TimeWindow
from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.kinds import Kind
from landscape.kubeapi.store import Event, Store, now_rfc3339

log = logging.getLogger(__name__)

CREATE_TASKS = (
    "Deploying Shoot namespace in Seed",
    "Deploying cloud provider account secret",
    "Waiting until shoot infrastructure has been reconciled",
    "Deploying Kubernetes API server",
    "Waiting until Kubernetes API server rolled out",
    "Deploying managed resources for system components",
    "Waiting until shoot worker nodes have been reconciled",
    "Waiting until the Kubernetes API server can connect to the Shoot workers",
    "Deploying observability components",
    "Waiting until managed resources are healthy",
)
RECONCILE_TASKS = (
    "Waiting until shoot infrastructure has been reconciled",
    "Deploying Kubernetes API server",
    "Waiting until Kubernetes API server rolled out",
    "Waiting until shoot worker nodes have been reconciled",
    "Deploying managed resources for system components",
    "Waiting until managed resources are healthy",
)
DELETE_TASKS = (
    "Deleting managed resources",
    "Waiting until shoot worker nodes have been terminated",
    "Destroying Kubernetes API server",
    "Destroying shoot infrastructure",
    "Waiting until shoot infrastructure has been destroyed",
    "Deleting Shoot namespace in Seed",
)

#: fault -> (error code, message) for faults that go straight to Failed.
FAILED_FAULTS = {
    "quota-exceeded": (
        "ERR_INFRA_QUOTA_EXCEEDED",
        "Quota exceeded for quota metric 'CPUS' in region: limit 24, requested 32",
    ),
    "rate-limited": (
        "ERR_INFRA_RATE_LIMITS_EXCEEDED",
        "Rate limit exceeded: too many requests to the cloud provider API (RequestLimitExceeded)",
    ),
    "unauthorized": (
        "ERR_INFRA_UNAUTHORIZED",
        "the credentials in the referenced secret are not authorized for this operation",
    ),
    "configuration": ("ERR_CONFIGURATION_PROBLEM", "invalid networking configuration: nodes CIDR overlaps"),
}
FAULTS = (*FAILED_FAULTS, "error", "stuck", "flap")


@dataclass
class ShootFault:
    fault: str
    shoot: str | None = None  # "namespace/name"; None: any shoot
    operation: str | None = None  # Create/Reconcile/Delete; None: any
    count: int = 1
    at_progress: int = 30
    sim_seconds: float = 120.0  # how long an `error` or `flap` lasts in simulated time

    def matches(self, key: str, operation: str, progress: int) -> bool:
        return (self.shoot in (None, key)) and (self.operation in (None, operation)) and progress >= self.at_progress


@dataclass
class Gardenlet:
    store: Store
    speed: float = 1200.0
    task_seconds: float = 60.0
    faults: list[ShootFault] = field(default_factory=list)
    ready_log: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    stuck_release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kind(self) -> Kind:
        kind = self.store.registry.get(CORE, "v1beta1", "shoots")
        assert kind is not None
        return kind

    # --- wiring ----------------------------------------------------------------------------------

    def on_event(self, ev: Event) -> None:
        if ev.kind is self.kind and ev.type != "DELETED":
            self.queue.put_nowait(f"{ev.namespace}/{ev.obj['metadata']['name']}")

    async def run(self) -> None:
        self.store.listeners.append(self.on_event)
        try:
            while True:
                key = await self.queue.get()
                try:
                    self.reconcile(key)
                except Exception:  # a controller keeps going, like the real one
                    log.exception("reconciling %s failed", key)
        finally:
            for task in self.tasks.values():
                task.cancel()

    def add_fault(self, fault: ShootFault) -> None:
        if fault.fault not in FAULTS:
            raise ValueError(f"unknown fault {fault.fault!r}; known: {', '.join(FAULTS)}")
        self.faults.append(fault)

    def clear_faults(self) -> None:
        self.faults.clear()
        self.stuck_release.set()

    def _take_fault(self, key: str, operation: str, progress: int) -> ShootFault | None:
        for f in self.faults:
            if f.matches(key, operation, progress):
                f.count -= 1
                if f.count <= 0:
                    self.faults.remove(f)
                return f
        return None

    async def _sleep_sim(self, sim_seconds: float) -> None:
        await asyncio.sleep(max(sim_seconds / max(self.speed, 1e-6), 0.0))

    # --- reconciliation --------------------------------------------------------------------------

    def _split(self, key: str) -> tuple[str, str]:
        ns, _, name = key.partition("/")
        return ns, name

    def reconcile(self, key: str) -> None:
        running = self.tasks.get(key)
        if running is not None and not running.done():
            self.pending.add(key)
            return
        ns, name = self._split(key)
        obj = self.store.peek(self.kind, ns, name)
        if obj is None:
            return
        meta = obj["metadata"]
        status = obj.get("status") or {}
        last = status.get("lastOperation") or {}
        if meta.get("deletionTimestamp"):
            if FINALIZER in (meta.get("finalizers") or []) and not (
                last.get("type") == "Delete"
                and last.get("state") == "Failed"
                and status.get("observedGeneration") == meta.get("generation")
            ):
                self._start(key, "Delete", int(meta["generation"]))
            return
        if int(meta.get("generation", 1)) != int(status.get("observedGeneration") or 0):
            created = last.get("type") != "Create" or last.get("state") == "Succeeded"
            op = "Reconcile" if last and created else "Create"
            if op == "Reconcile" and self._confined(obj):
                return
            self._start(key, op, int(meta["generation"]))

    def _confined(self, obj: dict[str, Any]) -> bool:
        """confineSpecUpdateRollout: a spec change waits for the maintenance window unless an operation
        annotation forced this generation (then it rolls out now). Re-checked when the window opens."""
        meta = obj["metadata"]
        maintenance = (obj.get("spec") or {}).get("maintenance") or {}
        if not maintenance.get("confineSpecUpdateRollout"):
            return False
        forced = self.store.notes.get(FORCED_NOTE, set())
        if (meta.get("namespace"), meta["name"], int(meta.get("generation", 1))) in forced:
            return False
        window = maintenance.get("timeWindow") or {}
        begin, end = window.get("begin", "220000+0000"), window.get("end", "230000+0000")
        now = datetime.now(UTC)
        try:
            tw = TimeWindow.parse(begin, end)
        except RuleError:
            return False  # admission refuses unparseable windows; never hold a rollout on one
        if tw.contains(now):
            return False
        key = f"{meta.get('namespace')}/{meta['name']}"
        delay = tw.seconds_until_begin(now) + 1
        asyncio.get_running_loop().call_later(delay, self.queue.put_nowait, key)
        log.info("%s: spec change confined to the maintenance window (opens in %.0f s)", key, delay)
        return True

    def _start(self, key: str, operation: str, generation: int) -> None:
        task = asyncio.create_task(self._operate(key, operation, generation))
        self.tasks[key] = task

        def done(_: asyncio.Task[None]) -> None:
            if self.tasks.get(key) is task:
                del self.tasks[key]
            if key in self.pending:
                self.pending.discard(key)
                self.queue.put_nowait(key)

        task.add_done_callback(done)

    def _write_status(self, key: str, mutate: Any) -> dict[str, Any] | None:
        ns, name = self._split(key)
        try:
            obj = self.store.get(self.kind, ns, name)
        except ApiError:
            return None
        status = obj.setdefault("status", {})
        mutate(status, obj)
        return self.store.update(self.kind, ns, name, obj, subresource="status", manager="gardenlet")

    def _generation(self, key: str) -> int | None:
        ns, name = self._split(key)
        obj = self.store.peek(self.kind, ns, name)
        return None if obj is None else int(obj["metadata"].get("generation", 1))

    def _take_operation(self, key: str) -> str | None:
        """A day-2 operation annotation (credential rotation) this reconcile acts on; removed from the
        shoot as the gardenlet does once it has picked it up."""
        ns, name = self._split(key)
        obj = self.store.peek(self.kind, ns, name)
        op = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(OPERATION)
        if obj is None or op not in day2.ROTATIONS:
            return None
        with contextlib.suppress(ApiError):
            fresh = self.store.get(self.kind, ns, name)
            fresh["metadata"]["annotations"].pop(OPERATION, None)
            self.store.update(self.kind, ns, name, fresh, manager="gardenlet")
        return str(op)

    async def _operate(self, key: str, operation: str, generation: int) -> None:
        tasks = {"Create": CREATE_TASKS, "Reconcile": RECONCILE_TASKS, "Delete": DELETE_TASKS}[operation]
        day2_op = self._take_operation(key) if operation == "Reconcile" else None
        if operation == "Reconcile":
            ns, name = self._split(key)
            current = self.store.peek(self.kind, ns, name) or {}
            tasks = tasks + day2.task_names(day2_op, current, current.get("status") or {})
        flow = {
            "Create": "Shoot cluster reconciliation",
            "Reconcile": "Shoot cluster reconciliation",
            "Delete": "Shoot cluster deletion",
        }[operation]

        def start(status: dict[str, Any], obj: dict[str, Any]) -> None:
            now = now_rfc3339()
            status["observedGeneration"] = generation
            status["lastOperation"] = {
                "type": operation,
                "state": "Processing",
                "progress": 0,
                "description": f"{tasks[0]}.",
                "lastUpdateTime": now,
            }
            status.setdefault(
                "technicalID",
                f"shoot--{key.split('/')[0].removeprefix('garden-')}--{obj['metadata']['name']}",
            )
            status.setdefault("uid", obj["metadata"]["uid"])
            status.setdefault("gardener", {"id": "sim-gardenlet", "name": "gardenlet", "version": "v1.110.0-sim"})
            status.setdefault("hibernated", False)
            day2.begin(status, day2_op)
            if operation == "Create" or not status.get("conditions"):
                status["conditions"] = [
                    {
                        "type": t,
                        "status": "Unknown",
                        "reason": "ConditionInitialized",
                        "message": "The condition has been initialized but its semantic check has not been "
                        "performed yet.",
                        "lastTransitionTime": now,
                        "lastUpdateTime": now,
                    }
                    for t in CONDITION_TYPES
                ]

        if self._write_status(key, start) is None:
            return
        for i, task_name in enumerate(tasks):
            progress = int(100 * i / len(tasks))
            fault = self._take_fault(key, operation, progress)
            if fault is not None:
                outcome = await self._inject(key, operation, fault, task_name, progress, flow, generation)
                if outcome == "stop":
                    return
            if self._generation(key) is None:
                return
            self._write_status(
                key,
                lambda s, o, p=progress, t=task_name: s["lastOperation"].update(
                    state="Processing", progress=p, description=f"{t}.", lastUpdateTime=now_rfc3339()
                ),
            )
            await self._sleep_sim(self.task_seconds)
        if operation == "Delete":
            ns, name = self._split(key)
            with contextlib.suppress(ApiError):
                obj = self.store.get(self.kind, ns, name)
                obj["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != FINALIZER]
                self.store.update(self.kind, ns, name, obj, manager="gardenlet")
            return
        verb = "created" if operation == "Create" else "reconciled"

        def succeed(status: dict[str, Any], obj: dict[str, Any]) -> None:
            now = now_rfc3339()
            status["lastOperation"] = {
                "type": operation,
                "state": "Succeeded",
                "progress": 100,
                "description": f"Shoot cluster has been successfully {verb}.",
                "lastUpdateTime": now,
            }
            status.pop("lastErrors", None)
            day2.finish(status, day2_op, obj)
            status["conditions"] = [
                {
                    "type": t,
                    "status": "True",
                    "reason": f"{t}Healthy" if not t.endswith("Healthy") else "HealthyNow",
                    "message": "All checks passed.",
                    "lastTransitionTime": now,
                    "lastUpdateTime": now,
                }
                for t in CONDITION_TYPES
            ]

        written = self._write_status(key, succeed)
        if written is not None:
            ns, name = self._split(key)
            self.ready_log.append(
                {
                    "namespace": ns,
                    "name": name,
                    "generation": generation,
                    "resourceVersion": written["metadata"]["resourceVersion"],
                    "time": time.time(),
                }
            )
        flap = self._take_fault(key, "Flap", 0) if any(f.fault == "flap" for f in self.faults) else None
        if flap is not None and flap.fault == "flap":
            await self._flap(key, flap)

    async def _inject(
        self,
        key: str,
        operation: str,
        fault: ShootFault,
        task_name: str,
        progress: int,
        flow: str,
        generation: int,
    ) -> str:
        now = now_rfc3339()
        task_id = task_name.replace(" ", "")[:40] + "-" + uuid.uuid4().hex[:6]
        if fault.fault in FAILED_FAULTS:
            code, message = FAILED_FAULTS[fault.fault]
            description = f'Flow "{flow}" encountered task errors: [task "{task_name}" failed: {message}]'

            def failed(status: dict[str, Any], obj: dict[str, Any]) -> None:
                status["lastOperation"] = {
                    "type": operation,
                    "state": "Failed",
                    "progress": progress,
                    "description": description,
                    "lastUpdateTime": now,
                }
                status["lastErrors"] = [
                    {"description": description, "taskID": task_id, "codes": [code], "lastUpdateTime": now}
                ]

            self._write_status(key, failed)
            return "stop"
        if fault.fault == "error":
            description = (
                f'Flow "{flow}" encountered task errors: [task "{task_name}" failed: '
                "retry failed with context deadline exceeded, last error: infrastructure "
                "dependencies are not ready yet]"
            )

            def errored(status: dict[str, Any], obj: dict[str, Any]) -> None:
                status["lastOperation"] = {
                    "type": operation,
                    "state": "Error",
                    "progress": progress,
                    "description": description + " Operation will be retried.",
                    "lastUpdateTime": now,
                }
                status["lastErrors"] = [
                    {
                        "description": description,
                        "taskID": task_id,
                        "codes": ["ERR_RETRYABLE_INFRA_DEPENDENCIES"],
                        "lastUpdateTime": now,
                    }
                ]

            self._write_status(key, errored)
            await self._sleep_sim(fault.sim_seconds)
            return "continue"
        if fault.fault == "stuck":
            self._write_status(
                key,
                lambda s, o: s["lastOperation"].update(
                    state="Processing", progress=progress, description=f"{task_name}.", lastUpdateTime=now
                ),
            )
            self.stuck_release.clear()
            while not self.stuck_release.is_set():
                if self._generation(key) != generation:
                    return "stop"  # a reconcile annotation or a new spec restarts the operation
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stuck_release.wait(), 0.1)
            return "continue"
        if fault.fault == "flap":
            self.faults.append(ShootFault("flap", fault.shoot, "Flap", 1, 0, fault.sim_seconds))
        return "continue"

    async def _flap(self, key: str, fault: ShootFault) -> None:
        def nodes(status: str, reason: str, message: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
            def write(st: dict[str, Any], obj: dict[str, Any]) -> None:
                for c in st.get("conditions") or []:
                    if c["type"] == "EveryNodeReady":
                        c.update(status=status, reason=reason, lastTransitionTime=now_rfc3339(), message=message)

            return write

        await self._sleep_sim(self.task_seconds / 2)
        self._write_status(
            key,
            nodes("False", "NodesUnhealthy", "Node 'shoot--worker-z1-0' is not ready (kubelet stopped posting status)"),
        )
        await self._sleep_sim(fault.sim_seconds)
        self._write_status(key, nodes("True", "EveryNodeReady", "All nodes are ready."))


def snapshot(g: Gardenlet) -> dict[str, Any]:
    return {
        "speed": g.speed,
        "taskSeconds": g.task_seconds,
        "faults": [copy.copy(f.__dict__) for f in g.faults],
        "running": sorted(g.tasks),
    }
