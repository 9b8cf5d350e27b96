"""Simulated Konfidence VectorPromotion controller (installed by the ``landscape.konfidence`` plugin).

From konfidence-project/konfidence at 0c37657e (``internal/vectorpromotion/internal/controller/doc.go``,
``vectorpromotion_serialization.go``, ``internal/vectorpromotion/approval.go``,
``api/v1alpha1/vectorpromotion_types.go``): a VectorPromotion is an immutable record (vector, sequence,
source, target, requireApproval pinned by the CRD's CEL rules). Conditions are the truth and
``status.state`` is derived from them:

- ``requireApproval`` and no ``Approved`` condition: Waiting (``Succeeded`` False, ``WaitingForApproval``).
  An approver records ``status.approval`` and ``Approved`` True (``ManuallyApproved``) on the status.
- Serialization per ``vectorPromotionConfigName``: the newest cleared promotion (highest ``sequence``)
  wins; older non-terminal siblings become Superseded (``PromotionSuperseded``), a locked terminal
  state: approving or executing them afterwards does nothing.
- Execution: the target Stage (by name, in the promotion's namespace; landscapes are not modelled) must
  exist, else Blocked (``PromotionTargetUnresolved``). InProgress (``PromotionRunning``) writes the vector
  to the Stage and records ``status.promotedStageRef``; Succeeded (``PromotionSucceeded``) once the
  Stage reports it Ready, Failed (``PromotionFailed``) when its deployment fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.kinds import Kind
from landscape.kubeapi.store import Event, Store, now_rfc3339

log = logging.getLogger(__name__)

GROUP = "konfidence.cloud"
VERSION = "v1alpha1"
MANAGER = "konfidence-promotion-controller"
TERMINAL = ("Succeeded", "Failed", "Superseded")


def _cond(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return {}


def approved(p: dict[str, Any]) -> bool:
    return _cond(p, "Approved").get("status") == "True"


def cleared(p: dict[str, Any]) -> bool:
    return not (p.get("spec") or {}).get("requireApproval") or approved(p)


def state_of(p: dict[str, Any]) -> str:
    return str((p.get("status") or {}).get("state") or "")


def sequence(p: dict[str, Any]) -> int:
    return int((p.get("spec") or {}).get("sequence") or 0)


@dataclass
class PromotionController:
    store: Store
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    def kind(self, plural: str) -> Kind | None:
        return self.store.registry.get(GROUP, VERSION, plural)

    def on_event(self, ev: Event) -> None:
        if ev.kind.group == GROUP and ev.type != "DELETED" and ev.kind.plural in ("vectorpromotions", "stages"):
            self.queue.put_nowait(ev)

    async def run(self) -> None:
        self.store.listeners.append(self.on_event)
        while True:
            ev = await self.queue.get()
            try:
                self.handle(ev)
            except Exception:
                log.exception("reconciling VectorPromotions in %s failed", ev.namespace)

    def handle(self, ev: Event) -> None:
        ns = ev.namespace
        if ev.kind.plural == "vectorpromotions":
            self.reconcile_config(ns, str((ev.obj.get("spec") or {}).get("vectorPromotionConfigName", "")))
            return
        for p in self._promotions(ns):
            target = ((p.get("spec") or {}).get("target") or {}).get("name")
            if state_of(p) in ("InProgress", "Blocked") and target == ev.obj["metadata"]["name"]:
                self.reconcile_config(ns, p["spec"]["vectorPromotionConfigName"])

    def _promotions(self, ns: str) -> list[dict[str, Any]]:
        kind = self.kind("vectorpromotions")
        return [] if kind is None else list(self.store.iter(kind, ns))

    def _status(self, p: dict[str, Any], mutate: Callable[[dict[str, Any]], None]) -> None:
        kind = self.kind("vectorpromotions")
        assert kind is not None
        ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
        try:
            obj = self.store.get(kind, ns, name)
        except ApiError:
            return
        status = obj.setdefault("status", {})
        before = repr(status)
        mutate(status)
        if repr(status) != before:
            self.store.update(kind, ns, name, obj, subresource="status", manager=MANAGER)

    @staticmethod
    def _set(status: dict[str, Any], state: str, ctype: str, value: bool, reason: str, message: str, gen: int) -> None:
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
        old: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == ctype), {})
        flag = "True" if value else "False"
        conditions.append(
            {
                "type": ctype,
                "status": flag,
                "reason": reason,
                "message": message,
                "observedGeneration": gen,
                "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == flag else now_rfc3339(),
            }
        )
        status["conditions"] = conditions
        status["state"] = state

    def _setter(self, state: str, ok: bool, reason: str, message: str, gen: int) -> Callable[[dict[str, Any]], None]:
        def mutate(status: dict[str, Any]) -> None:
            self._set(status, state, "Succeeded", ok, reason, message, gen)

        return mutate

    def reconcile_config(self, ns: str, config: str) -> None:
        siblings = [p for p in self._promotions(ns) if (p.get("spec") or {}).get("vectorPromotionConfigName") == config]
        live = [p for p in siblings if state_of(p) not in TERMINAL]
        winners = sorted((p for p in live if cleared(p)), key=sequence)
        newest = winners[-1] if winners else None
        for p in live:
            gen = int(p["metadata"].get("generation", 1))
            if newest is not None and sequence(p) < sequence(newest):
                why = f"superseded by VectorPromotion {newest['metadata']['name']} (sequence {sequence(newest)})"
                self._status(p, self._setter("Superseded", False, "PromotionSuperseded", why, gen))
            elif not cleared(p):
                self._status(p, self._setter("Waiting", False, "WaitingForApproval", "waiting for approval", gen))
            elif p is newest:
                self._execute(p)

    def _execute(self, p: dict[str, Any]) -> None:
        ns, gen = p["metadata"]["namespace"], int(p["metadata"].get("generation", 1))
        spec = p.get("spec") or {}
        target, vector = str((spec.get("target") or {}).get("name", "")), str(spec.get("vector", ""))
        stages = self.kind("stages")
        stage = self.store.peek(stages, ns, target) if stages is not None else None
        if stages is None or stage is None:
            self._status(
                p,
                lambda s: self._set(
                    s,
                    "Blocked",
                    "Succeeded",
                    False,
                    "PromotionTargetUnresolved",
                    f"target Stage {ns}/{target} not found",
                    gen,
                ),
            )
            return
        if state_of(p) != "InProgress":
            if (stage.get("spec") or {}).get("vector") != vector:
                obj = self.store.get(stages, ns, target)
                obj["spec"] = {**(obj.get("spec") or {}), "vector": vector}
                stage = self.store.update(stages, ns, target, obj, manager=MANAGER)
            written = int(stage["metadata"].get("generation", 1))

            def running(s: dict[str, Any]) -> None:
                self._set(
                    s,
                    "InProgress",
                    "Succeeded",
                    False,
                    "PromotionRunning",
                    f"writing {vector} to Stage {target} (generation {written})",
                    gen,
                )
                s["promotedStageRef"] = {"apiGroup": GROUP, "kind": "Stage", "name": target, "namespace": ns}

            self._status(p, running)
            return
        deployed, ready = _cond(stage, "VectorDeployed"), _cond(stage, "Ready")
        current = int(stage["metadata"].get("generation", 1))
        if (stage.get("spec") or {}).get("vector") != vector:
            self._status(
                p,
                lambda s: self._set(
                    s,
                    "Failed",
                    "Succeeded",
                    False,
                    "PromotionFailed",
                    f"Stage {target} was pointed elsewhere while promoting",
                    gen,
                ),
            )
        elif deployed.get("status") == "False" and str(deployed.get("reason", "")).endswith("Failed"):
            self._status(
                p,
                lambda s: self._set(
                    s,
                    "Failed",
                    "Succeeded",
                    False,
                    "PromotionFailed",
                    str(deployed.get("message", "deployment failed")),
                    gen,
                ),
            )
        elif ready.get("status") == "True" and int(ready.get("observedGeneration") or 0) >= current:
            self._status(
                p,
                lambda s: self._set(
                    s, "Succeeded", "Succeeded", True, "PromotionSucceeded", f"Stage {target} runs {vector}", gen
                ),
            )


def install(server: Any) -> PromotionController:
    controller = PromotionController(server.store)
    server.background.append(controller.run)
    return controller
