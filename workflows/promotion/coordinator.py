"""``PromotionCoordinatorWorkflow`` (id ``promotion-coordinator-<pipeline>``): numbers versions, hands
out rings one run at a time, supersedes older runs, blocks versions that failed.

It talks to runs by signals only. Each signal becomes a typed event in an inbox that the main loop
handles in arrival order (a handler may signal runs, which a signal handler itself must not await);
the state that matters (:class:`CoordinatorState`) is continued as new when the history grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

from definitions.promotion_runs import (
    CoordinatorRun,
    CoordinatorState,
    RegisterReply,
    RegisterRequest,
    RingGrant,
    RingLockRequest,
    RingReport,
    RunFinished,
    Superseded,
)

#: Daily wake-ups without work before the coordinator continues as new anyway.
IDLE_DAYS_BEFORE_CONTINUE = 90
#: Runs the coordinator remembers (older ones drop off).
MAX_RUNS = 200
#: Releases (several components as one): the coordinator refuses a release whose pins conflict.
RELEASE_PATCH = "promotion-release-conflict"


@dataclass(frozen=True)
class Register:
    """A run asks for its sequence number (or to be told its version is blocked)."""

    request: RegisterRequest


@dataclass(frozen=True)
class Acquire:
    """A run asks for a ring; it is granted now or queued by sequence."""

    request: RingLockRequest


@dataclass(frozen=True)
class RingEvent:
    """A run reports on a ring it held."""

    report: RingReport


class Release(RingEvent):
    """The run is done with the ring (whatever happened in it)."""


class Verified(RingEvent):
    """The run verified the ring: its version becomes the ring's rollback target."""


class Failed(RingEvent):
    """The run failed in the ring: its version is blocked."""


@dataclass(frozen=True)
class Finished:
    """The run ended; it releases every ring it still holds or waits for."""

    finished: RunFinished


CoordinatorEvent = Register | Acquire | Release | Verified | Failed | Finished


@workflow.defn
class PromotionCoordinatorWorkflow:
    """Numbers versions, hands out rings one run at a time, supersedes, blocks failed versions."""

    def __init__(self) -> None:
        self._state = CoordinatorState(pipeline="")
        self._inbox: list[CoordinatorEvent] = []

    @workflow.run
    async def run(self, state: CoordinatorState) -> None:
        self._state = state
        idle = 0
        while True:
            # A daily wake-up keeps the coordinator from looking idle forever: a time-skipping test server
            # would otherwise jump to its default execution timeout and lose the state (blocked versions).
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox) or workflow.info().is_continue_as_new_suggested(),
                    timeout=timedelta(days=1),
                )
            except TimeoutError:
                idle += 1
                if idle >= IDLE_DAYS_BEFORE_CONTINUE:
                    workflow.continue_as_new(self._state)
                continue
            while self._inbox:
                await self._handle(self._inbox.pop(0))
            if workflow.info().is_continue_as_new_suggested() and not self._inbox:
                workflow.continue_as_new(self._state)

    async def _send(self, workflow_id: str, signal: str, arg: object) -> None:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(signal, arg)
        except Exception as exc:
            workflow.logger.warning("signal %s to %s failed: %s", signal, workflow_id, exc)

    def _run(self, workflow_id: str) -> CoordinatorRun | None:
        return next((r for r in reversed(self._state.runs) if r.workflow_id == workflow_id), None)

    async def _handle(self, event: CoordinatorEvent) -> None:
        s = self._state
        match event:
            case Register(request=req):
                await self._register(req)
            case Acquire(request=lock):
                await self._acquire(lock)
            case Release(report=rep):
                await self._release(rep.ring, rep.workflow_id)
            case Verified(report=rep):
                s.last_verified[rep.ring] = rep.version
                run = self._run(rep.workflow_id)
                s.last_verified_pins.pop(rep.ring, None)
                s.last_verified_component.pop(rep.ring, None)
                if run is not None and run.pins:
                    s.last_verified_pins[rep.ring] = dict(run.pins)
                if run is not None and run.component:
                    s.last_verified_component[rep.ring] = run.component
                await self._release(rep.ring, rep.workflow_id)
            case Failed(report=rep):
                s.blocked[rep.version] = f"failed ring {rep.ring}: {rep.reason}"
                await self._release(rep.ring, rep.workflow_id)
            case Finished(finished=fin):
                done = self._run(fin.workflow_id)
                if done is not None:
                    done.state = fin.state.value
                await self._release_all(fin.workflow_id)

    async def _register(self, req: RegisterRequest) -> None:
        s = self._state
        if req.block_failed and req.version in s.blocked and not req.override_reason:
            await self._send(
                req.workflow_id, "registered", RegisterReply(sequence=0, blocked=True, reason=s.blocked[req.version])
            )
            return
        conflict = None if req.supersede else self._conflict(req)
        if conflict is not None and workflow.patched(RELEASE_PATCH):
            await self._send(req.workflow_id, "registered", RegisterReply(sequence=0, conflict=True, reason=conflict))
            return
        s.blocked.pop(req.version, None)
        seq = s.next_sequence
        s.next_sequence += 1
        if req.supersede:
            for run in s.runs:
                if run.state == "Running" and run.sequence < seq:
                    run.state = "Superseded"
                    await self._send(run.workflow_id, "superseded", Superseded(by_version=req.version, by_sequence=seq))
                    await self._release_all(run.workflow_id)
        s.runs.append(
            CoordinatorRun(
                version=req.version,
                sequence=seq,
                workflow_id=req.workflow_id,
                override_reason=req.override_reason,
                pins=dict(req.pins),
                release=req.release,
                component=req.component,
            )
        )
        del s.runs[:-MAX_RUNS]
        await self._send(req.workflow_id, "registered", RegisterReply(sequence=seq))

    def _conflict(self, req: RegisterRequest) -> str | None:
        """Why ``req`` may not run beside the releases in flight: one of them pins another version of a
        component ``req`` pins (both would move through the same rings); None when they agree."""
        for run in self._state.runs:
            if run.state != "Running" or run.workflow_id == req.workflow_id or not (req.release or run.release):
                continue
            for component, version in sorted(req.pins.items()):
                held = run.pins.get(component)
                if held is not None and held != version:
                    return (
                        f"component {component} {version} conflicts with {component} {held}, pinned by release "
                        f"{run.version} (#{run.sequence}, run {run.workflow_id}) still in flight in the same rings; "
                        "wait for it to finish or abort it, or let the newer release supersede it "
                        "(versionPolicy.supersede)"
                    )
        return None

    async def _acquire(self, lock: RingLockRequest) -> None:
        s = self._state
        current = self._run(lock.workflow_id)
        if current is None or current.state != "Running":
            return
        holder = s.holders.get(lock.ring)
        if holder in (None, lock.workflow_id):
            await self._grant(lock.ring, lock.workflow_id)
        else:
            queue = s.waiting.setdefault(lock.ring, [])
            queue.append(lock)
            queue.sort(key=lambda r: r.sequence)

    async def _grant(self, ring: str, workflow_id: str) -> None:
        self._state.holders[ring] = workflow_id
        grant = RingGrant(
            ring=ring,
            last_verified=self._state.last_verified.get(ring),
            last_verified_pins=self._state.last_verified_pins.get(ring),
            last_verified_component=self._state.last_verified_component.get(ring),
        )
        await self._send(workflow_id, "granted", grant)

    async def _release(self, ring: str, workflow_id: str) -> None:
        s = self._state
        if s.holders.get(ring) == workflow_id:
            del s.holders[ring]
        s.waiting[ring] = [w for w in s.waiting.get(ring, []) if w.workflow_id != workflow_id]
        while ring not in s.holders and s.waiting.get(ring):
            nxt = s.waiting[ring].pop(0)
            run = self._run(nxt.workflow_id)
            if run is not None and run.state == "Running":
                await self._grant(ring, nxt.workflow_id)

    async def _release_all(self, workflow_id: str) -> None:
        for ring in [r for r, w in self._state.holders.items() if w == workflow_id]:
            await self._release(ring, workflow_id)
        for ring in list(self._state.waiting):
            self._state.waiting[ring] = [w for w in self._state.waiting[ring] if w.workflow_id != workflow_id]

    # --- signals: each one an event in the inbox ---------------------------------------------------

    @workflow.signal
    def register(self, req: RegisterRequest) -> None:
        if not self._state.pipeline:
            self._state.pipeline = req.pipeline
        self._inbox.append(Register(req))

    @workflow.signal
    def acquire(self, req: RingLockRequest) -> None:
        self._inbox.append(Acquire(req))

    @workflow.signal
    def release(self, rep: RingReport) -> None:
        self._inbox.append(Release(rep))

    @workflow.signal
    def verified(self, rep: RingReport) -> None:
        self._inbox.append(Verified(rep))

    @workflow.signal
    def failed(self, rep: RingReport) -> None:
        self._inbox.append(Failed(rep))

    @workflow.signal
    def finished(self, fin: RunFinished) -> None:
        self._inbox.append(Finished(fin))

    @workflow.query
    def state(self) -> CoordinatorState:
        return self._state
