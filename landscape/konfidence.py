"""Simulated Konfidence Stage controller for the landscape API server (plugin ``landscape.konfidence``).

What it does is read from Konfidence (konfidence-project/konfidence at 0c37657e:
``internal/stage/internal/controller/stage_controller.go``, ``stage_version_controller.go``,
``internal/vectordeployment``, ``api/v1alpha1/stage_types.go``), with Flux and the artifact deployments
collapsed into a timer:

- The kinds come from the landscape's own CRDs (``landscape/crds/konfidence.cloud.yaml``) unless the
  server already serves them (``--set crds.paths=...`` with the upstream CRDs).
- A Stage is reconciled when its generation changes: its Ready condition goes False, a
  ``StageVersion`` named ``<stage>-<fnv(stage-vector-generation)>`` (labels ``konfidence.cloud/stage-name``
  and ``konfidence.cloud/vector-ref``, controller reference to the Stage) records the rollout, and a
  ``VectorDeployment`` of the same name deploys the vector (condition ``VectorDeploymentCreated``;
  ``status.latestVectorDeploymentRef`` points at it).
- After ``konfidence.deploySeconds`` (real seconds, default 0.2) the VectorDeployment reports
  ``VectorDeployed`` and ``Ready``, the StageVersion ``VectorMigrated`` and ``Ready``, and the Stage
  ``VectorDeployed``, ``VectorMigrated`` and ``Ready`` True for that generation and appends the vector
  to ``status.vectorHistory`` (a log, oldest first, at most 10 entries; upstream declares the field
  without filling it yet at that commit).
- A newer vector replaces a deployment in flight: the older VectorDeployment ends Ready False with
  reason ``Superseded`` and never enters the history.
- VectorPromotions (approval, supersede and lock, execution) are reconciled by
  :mod:`landscape.konfidence_promotions`.
- Every step is recorded as a core/v1 Event on the Stage (``kubectl describe`` shows them); deleting a
  Stage deletes what it owns.

Faults (``POST /admin/konfidence/faults`` ``{fault, stage?: "ns/name", seconds?, count?}``; ``DELETE``
clears): ``never-ready`` (deployed, but Ready stays False, reason ``ActivationFailed``), ``slow``
(deploying takes ``seconds``), ``deploy-failed`` (VectorDeployed False, reason
``ArtifactDeploymentFailed``). ``GET /admin/konfidence/history`` lists every deployment in order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from landscape import konfidence_promotions
from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.kinds import Kind
from landscape.kubeapi.store import Event, Store, now_rfc3339

log = logging.getLogger(__name__)

GROUP = "konfidence.cloud"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CRDS = Path(__file__).resolve().parent / "crds" / "konfidence.cloud.yaml"
MANAGER = "konfidence-controller"
STAGE_NAME_LABEL = "konfidence.cloud/stage-name"
VECTOR_REF_LABEL = "konfidence.cloud/vector-ref"
FAULTS = ("never-ready", "slow", "deploy-failed")
HISTORY_LIMIT = 10
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.SafeEncodeString alphabet


def fnv(content: str, length: int) -> str:
    """Konfidence's ``hash.Fnv``: FNV-1a (32/64/128 bit by length), base 36, safe-encoded, the tail."""
    bits, prime, offset = (
        (32, 0x01000193, 0x811C9DC5)
        if length <= 7
        else (64, 0x100000001B3, 0xCBF29CE484222325)
        if length <= 13
        else (128, 0x0000000001000000000000000000013B, 0x6C62272E07BB014262B821756295C58D)
    )
    h = offset
    for byte in content.encode():
        h = ((h ^ byte) * prime) % (1 << bits)
    digits = ""
    while h:
        h, r = divmod(h, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    digits = (digits or "0").rjust(length, "0")
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in digits)[-length:]


@dataclass
class StageFault:
    fault: str
    stage: str | None = None  # "namespace/name"; None: every Stage
    seconds: float = 5.0
    count: int = 1_000_000

    def matches(self, key: str) -> bool:
        return self.stage in (None, key)


def _condition(ctype: str, status: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now_rfc3339(),
    }


def set_conditions(status: dict[str, Any], *conditions: dict[str, Any]) -> None:
    """``meta.SetStatusCondition``: replace by type, keep lastTransitionTime when the status is unchanged."""
    current = {c["type"]: c for c in status.get("conditions") or []}
    for c in conditions:
        old = current.get(c["type"])
        if old is not None and old.get("status") == c["status"]:
            c = {**c, "lastTransitionTime": old.get("lastTransitionTime", c["lastTransitionTime"])}
        current[c["type"]] = c
    status["conditions"] = list(current.values())


@dataclass
class Rollout:
    key: str
    generation: int
    vector: str
    name: str  # of the StageVersion and its VectorDeployment
    task: asyncio.Task[None] | None = None


@dataclass
class StageController:
    store: Store
    deploy_seconds: float = 0.2
    faults: list[StageFault] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    queue: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    rollouts: dict[str, Rollout] = field(default_factory=dict)

    def kind(self, plural: str) -> Kind:
        kind = self.store.registry.get(GROUP, VERSION, plural)
        if kind is None:
            raise LookupError(f"{plural}.{GROUP} is not served: load Konfidence's CRDs")
        return kind

    def on_event(self, ev: Event) -> None:
        if ev.kind.group == GROUP and ev.kind.plural == "stages":
            self.queue.put_nowait((ev.type, f"{ev.namespace}/{ev.obj['metadata']['name']}"))

    async def run(self) -> None:
        self.store.listeners.append(self.on_event)
        while True:
            event, key = await self.queue.get()
            try:
                if event == "DELETED":
                    self.collect(key)
                else:
                    self.reconcile(key)
            except Exception:
                log.exception("reconciling Stage %s failed", key)

    def fault_for(self, key: str, name: str) -> StageFault | None:
        for f in self.faults:
            if f.fault == name and f.matches(key) and f.count > 0:
                return f
        return None

    # --- writes ---------------------------------------------------------------------------------

    def _status(self, plural: str, ns: str, name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
        try:
            obj = self.store.get(self.kind(plural), ns, name)
        except ApiError:
            return
        mutate(obj.setdefault("status", {}))
        self.store.update(self.kind(plural), ns, name, obj, subresource="status", manager=MANAGER)

    def _create(self, plural: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        existing = self.store.peek(self.kind(plural), ns, body["metadata"]["name"])
        if existing is not None:
            return existing
        return self.store.create(self.kind(plural), ns, body, manager=MANAGER)

    def event(self, stage: dict[str, Any], reason: str, message: str, type_: str = "Normal") -> None:
        meta = stage["metadata"]
        now = now_rfc3339()
        events = self.store.registry.get("", "v1", "events")
        if events is None:
            return
        self.store.create(
            events,
            meta["namespace"],
            {
                "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
                "involvedObject": {
                    "apiVersion": API_VERSION,
                    "kind": "Stage",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta.get("uid", ""),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": "stage-controller"},
                "reportingComponent": "stage-controller",
            },
            manager=MANAGER,
        )

    # --- reconcile ------------------------------------------------------------------------------

    def reconcile(self, key: str) -> None:
        ns, _, name = key.partition("/")
        stage = self.store.peek(self.kind("stages"), ns, name)
        if stage is None:
            return
        generation = int(stage["metadata"].get("generation", 1))
        running = self.rollouts.get(key)
        if running is not None and running.generation == generation:
            return  # status writes and other updates without a generation change (GenerationChangedPredicate)
        vector = str((stage.get("spec") or {}).get("vector") or "")
        if running is not None and running.task is not None and not running.task.done():
            running.task.cancel()
            self._superseded(ns, running)
        version_name = f"{name}-{fnv(f'{name}-{vector}-{generation}', 13)}"
        rollout = Rollout(key, generation, vector, version_name)
        self.rollouts[key] = rollout
        self._status(
            "stages",
            ns,
            name,
            lambda s: set_conditions(
                s, _condition("Ready", False, "Reconciling", f"deploying generation {generation}", generation)
            ),
        )
        owner = {
            "apiVersion": API_VERSION,
            "kind": "Stage",
            "name": name,
            "uid": stage["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        sv = self._create(
            "stageversions",
            ns,
            {
                "apiVersion": API_VERSION,
                "kind": "StageVersion",
                "metadata": {
                    "name": version_name,
                    "namespace": ns,
                    "ownerReferences": [owner],
                    "labels": {STAGE_NAME_LABEL: name, VECTOR_REF_LABEL: fnv(vector, 25)},
                },
                "spec": {"vector": vector, "stageGeneration": generation, "stageRef": {"name": name}},
            },
        )
        self.event(stage, "StageVersionReconciled", f"StageVersion {version_name} for Stage {name}: created")
        self._create(
            "vectordeployments",
            ns,
            {
                "apiVersion": API_VERSION,
                "kind": "VectorDeployment",
                "metadata": {
                    "name": version_name,
                    "namespace": ns,
                    "labels": {"konfidence.cloud/stage-version-name": version_name},
                    "ownerReferences": [
                        {
                            "apiVersion": API_VERSION,
                            "kind": "StageVersion",
                            "name": version_name,
                            "uid": sv["metadata"]["uid"],
                        }
                    ],
                },
                "spec": {"vector": vector},
            },
        )
        created = f"Successfully created VectorDeployment {version_name} for stageVersion {version_name}"
        self._status(
            "stageversions",
            ns,
            version_name,
            lambda s: set_conditions(
                s, _condition("VectorDeploymentCreated", True, "VectorDeploymentCreated", created, 1)
            ),
        )

        def stage_created(s: dict[str, Any]) -> None:
            set_conditions(
                s,
                _condition("VectorDeploymentCreated", True, "VectorDeploymentCreated", created, generation),
                _condition("VectorDeployed", False, "Progressing", f"deploying {vector}", generation),
                _condition("Ready", False, "Progressing", f"waiting for {vector} to be deployed", generation),
            )
            s["latestVectorDeploymentRef"] = {
                "apiGroup": GROUP,
                "kind": "VectorDeployment",
                "name": version_name,
                "namespace": ns,
            }

        self._status("stages", ns, name, stage_created)
        rollout.task = asyncio.create_task(self._deploy(rollout))

    def _superseded(self, ns: str, old: Rollout) -> None:
        message = f"a newer vector replaced {old.vector} before it was deployed"
        self._status(
            "vectordeployments",
            ns,
            old.name,
            lambda s: set_conditions(s, _condition("Ready", False, "Superseded", message, 1)),
        )
        stage = self.store.peek(self.kind("stages"), *old.key.split("/", 1))
        if stage is not None:
            self.event(stage, "VectorSuperseded", message)
        self.deployments.append(
            {"stage": old.key, "vector": old.vector, "ready": False, "superseded": True, "at": now_rfc3339()}
        )

    async def _deploy(self, r: Rollout) -> None:
        ns, _, name = r.key.partition("/")
        slow = self.fault_for(r.key, "slow")
        await asyncio.sleep(slow.seconds if slow else self.deploy_seconds)
        stage = self.store.peek(self.kind("stages"), ns, name)
        if stage is None or self.rollouts.get(r.key) is not r:
            return
        g = r.generation
        if self.fault_for(r.key, "deploy-failed"):
            why = f"artifact deployment of {r.vector} failed (simulated fault)"
            self._status(
                "vectordeployments",
                ns,
                r.name,
                lambda s: set_conditions(
                    s,
                    _condition("VectorDeployed", False, "ArtifactDeploymentFailed", why, 1),
                    _condition("Ready", False, "ArtifactDeploymentFailed", why, 1),
                ),
            )
            self._status(
                "stages",
                ns,
                name,
                lambda s: set_conditions(
                    s,
                    _condition("VectorDeployed", False, "ArtifactDeploymentFailed", why, g),
                    _condition("Ready", False, "ArtifactDeploymentFailed", "the vector could not be deployed", g),
                ),
            )
            self.event(stage, "VectorDeploymentFailed", why, "Warning")
            self.deployments.append({"stage": r.key, "vector": r.vector, "ready": False, "at": now_rfc3339()})
            return
        never = self.fault_for(r.key, "never-ready")
        deployed = f"All artifacts of vector deployment {r.name} are deployed"
        self._status(
            "vectordeployments",
            ns,
            r.name,
            lambda s: set_conditions(
                s,
                _condition("VectorDeployed", True, "VectorDeployed", deployed, 1),
                _condition("Ready", True, "Ready", f"vector {r.vector} is ready", 1),
            ),
        )
        migrated = f"VectorMigration {r.name} successful for stageVersion {r.name}"
        self._status(
            "stageversions",
            ns,
            r.name,
            lambda s: set_conditions(
                s,
                _condition("VectorMigrated", True, "VectorMigrated", migrated, 1),
                *(
                    []
                    if never
                    else [_condition("Ready", True, "Ready", f"StageVersion {r.name} reconciled successfully", 1)]
                ),
            ),
        )

        def done(s: dict[str, Any]) -> None:
            ready = (
                _condition("Ready", False, "ActivationFailed", "workload health checks fail (simulated fault)", g)
                if never
                else _condition("Ready", True, "Ready", f"Successfully reconciled Stage {name}", g)
            )
            set_conditions(
                s,
                _condition("VectorDeployed", True, "VectorDeployed", deployed, g),
                _condition("VectorMigrated", True, "VectorMigrated", migrated, g),
                ready,
            )
            if not never:
                history = list(s.get("vectorHistory") or [])
                if history[-1:] != [r.vector]:
                    history.append(r.vector)
                s["vectorHistory"] = history[-HISTORY_LIMIT:]

        self._status("stages", ns, name, done)
        self.event(
            stage,
            "VectorDeployed",
            f"{r.vector} deployed" + (", not ready" if never else " and ready"),
            "Warning" if never else "Normal",
        )
        self.deployments.append({"stage": r.key, "vector": r.vector, "ready": never is None, "at": now_rfc3339()})

    def collect(self, key: str) -> None:
        """Garbage collection of what a deleted Stage owned (StageVersions and their VectorDeployments)."""
        ns, _, name = key.partition("/")
        rollout = self.rollouts.pop(key, None)
        if rollout is not None and rollout.task is not None:
            rollout.task.cancel()
        for sv in list(self.store.iter(self.kind("stageversions"), ns)):
            if (sv["metadata"].get("labels") or {}).get(STAGE_NAME_LABEL) != name:
                continue
            for plural in ("vectordeployments", "stageversions"):
                try:
                    self.store.delete(self.kind(plural), ns, sv["metadata"]["name"])
                except ApiError:
                    pass


def install(server: Any) -> StageController:
    if server.registry.get(GROUP, VERSION, "stages") is None:
        server.crds.load([server.plugin_config.get("konfidence.crds") or CRDS])
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
    server.konfidence_promotions = konfidence_promotions.install(server)
    return controller
