"""Simulated Konfidence Stage controller for the landscape API server (plugin ``landscape.konfidence``).

Konfidence's Stage (``konfidence.cloud/v1alpha1``) has one spec field, ``spec.vector`` (an OCM component
version reference). The real controller hands the vector to Flux and reports back. This one reacts to
store events like the simulated gardenlet: when ``metadata.generation`` moves past
``status.observedGeneration`` it sets ``VectorDeployed`` and ``Ready`` to False (reason Progressing),
and after ``konfidence.deploySeconds`` (real seconds, default 0.2) records the vector in
``status.history`` (newest first, at most 10) and sets both conditions True.

Faults (``POST /admin/konfidence/faults`` ``{fault, stage?: "ns/name", seconds?, count?}``; ``DELETE``
clears): ``never-ready`` (the vector is deployed but Ready stays False, reason ``HealthCheckFailed``),
``slow`` (deploying takes ``seconds``), ``deploy-failed`` (VectorDeployed False, reason
``ReconciliationFailed``). ``GET /admin/konfidence/history`` lists every deployment in order.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.extra_kinds import KONFIDENCE_GROUP, KONFIDENCE_VERSION
from landscape.kubeapi.kinds import Kind
from landscape.kubeapi.store import Event, Store, now_rfc3339

log = logging.getLogger(__name__)

FAULTS = ("never-ready", "slow", "deploy-failed")
HISTORY_LIMIT = 10


@dataclass
class StageFault:
    fault: str
    stage: str | None = None  # "namespace/name"; None: every Stage
    seconds: float = 5.0
    count: int = 1_000_000

    def matches(self, key: str) -> bool:
        return self.stage in (None, key)


def vector_text(vector: Any) -> str:
    if isinstance(vector, dict):
        name = vector.get("component") or vector.get("name") or "?"
        return f"{name}:{vector.get('version', '?')}"
    return str(vector)


@dataclass
class StageController:
    store: Store
    deploy_seconds: float = 0.2
    faults: list[StageFault] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        kind = self.store.registry.get(KONFIDENCE_GROUP, KONFIDENCE_VERSION, "stages")
        assert kind is not None
        return kind

    def on_event(self, ev: Event) -> None:
        if ev.kind is self.kind and ev.type != "DELETED":
            self.queue.put_nowait(f"{ev.namespace}/{ev.obj['metadata']['name']}")

    async def run(self) -> None:
        self.store.listeners.append(self.on_event)
        while True:
            key = await self.queue.get()
            try:
                self.reconcile(key)
            except Exception:
                log.exception("reconciling Stage %s failed", key)

    def fault_for(self, key: str, name: str) -> StageFault | None:
        for f in self.faults:
            if f.fault == name and f.matches(key) and f.count > 0:
                return f
        return None

    def reconcile(self, key: str) -> None:
        ns, _, name = key.partition("/")
        obj = self.store.peek(self.kind, ns, name)
        if obj is None:
            return
        generation = int(obj["metadata"].get("generation", 1))
        status = obj.get("status") or {}
        if int(status.get("observedGeneration") or 0) == generation:
            return
        running = self.tasks.get(key)
        if running is not None and not running.done():
            running.cancel()  # a newer vector replaces a deployment in flight, as Flux would
        self.tasks[key] = asyncio.create_task(self._deploy(key, generation, (obj.get("spec") or {}).get("vector")))

    def _write(self, key: str, mutate: Any) -> None:
        ns, _, name = key.partition("/")
        try:
            obj = self.store.get(self.kind, ns, name)
        except ApiError:
            return
        mutate(obj.setdefault("status", {}))
        self.store.update(self.kind, ns, name, obj, subresource="status", manager="konfidence-controller")

    @staticmethod
    def _conditions(status: dict[str, Any], deployed: tuple[str, str, str], ready: tuple[str, str, str]) -> None:
        now = now_rfc3339()
        old = {c["type"]: c for c in status.get("conditions") or []}
        conditions = []
        for ctype, (value, reason, message) in (("VectorDeployed", deployed), ("Ready", ready)):
            prev = old.get(ctype) or {}
            conditions.append(
                {
                    "type": ctype,
                    "status": value,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": prev.get("lastTransitionTime") if prev.get("status") == value else now,
                }
            )
        status["conditions"] = conditions

    async def _deploy(self, key: str, generation: int, vector: Any) -> None:
        text = vector_text(vector)

        def progressing(status: dict[str, Any]) -> None:
            status["observedGeneration"] = generation
            self._conditions(
                status,
                ("False", "Progressing", f"deploying {text}"),
                ("False", "Progressing", f"waiting for {text} to be deployed"),
            )

        self._write(key, progressing)
        slow = self.fault_for(key, "slow")
        await asyncio.sleep(slow.seconds if slow else self.deploy_seconds)
        if self.fault_for(key, "deploy-failed"):
            self._write(
                key,
                lambda s: self._conditions(
                    s,
                    ("False", "ReconciliationFailed", f"kustomization for {text} failed: simulated fault"),
                    ("False", "ReconciliationFailed", "the vector could not be deployed"),
                ),
            )
            return
        never = self.fault_for(key, "never-ready")

        def deployed(status: dict[str, Any]) -> None:
            status["vector"] = vector
            history = [
                {"vector": vector, "deployedAt": now_rfc3339(), "generation": generation},
                *(status.get("history") or []),
            ]
            status["history"] = history[:HISTORY_LIMIT]
            if never:
                self._conditions(
                    status,
                    ("True", "Deployed", f"{text} deployed"),
                    ("False", "HealthCheckFailed", "workload health checks fail (simulated fault)"),
                )
            else:
                self._conditions(status, ("True", "Deployed", f"{text} deployed"), ("True", "Ready", f"{text} ready"))

        self._write(key, deployed)
        self.deployments.append({"stage": key, "vector": vector, "ready": never is None, "at": now_rfc3339()})


def install(server: Any) -> StageController:
    controller = StageController(
        server.store, deploy_seconds=float(server.plugin_config.get("konfidence.deploySeconds", 0.2))
    )
    server.konfidence = controller

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            controller.faults.clear()
            return JSONResponse({"cleared": True})
        if request.method == "POST":
            body = await request.json()
            if body.get("fault") not in FAULTS:
                return JSONResponse(
                    {"error": f"unknown fault {body.get('fault')!r}; known: {', '.join(FAULTS)}"}, status_code=400
                )
            controller.faults.append(
                StageFault(
                    fault=body["fault"],
                    stage=body.get("stage"),
                    seconds=float(body.get("seconds", 5.0)),
                    count=int(body.get("count", 1_000_000)),
                )
            )
        return JSONResponse([f.__dict__ for f in controller.faults])

    async def history(request: Request) -> Response:
        return JSONResponse(controller.deployments)

    server.admin_routes.extend(
        [
            Route("/admin/konfidence/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/admin/konfidence/history", history),
        ]
    )
    server.background.append(controller.run)
    return controller
