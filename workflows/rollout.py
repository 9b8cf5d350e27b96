"""FleetRolloutWorkflow (queue ``gardener``): one operation over selected targets, in waves: a cluster
operation over shoots, or a server operation (firmware, BIOS, image) over a site's discovered servers,
selected from the site inventory by the ``redfish`` workers and run there as ``ServerUpdateWorkflow``
children (a server already in sync is reported ``in-sync``; one in use is skipped or drained by policy).

select (activity) -> plan the waves -> per wave: for each target (at most ``maxInFlight`` at a
time): pause point, freeze check, the operation's own workflow as a child -> count failures against
the budget (a shoot deleted meanwhile is skipped, not failed) -> gates before the next wave.
When the budget is exhausted or the rollout is aborted, targets in flight finish and nothing new
starts; later waves stay untouched and the result lists every target.

A long freeze: once the history passes ``continueAsNewAfter`` events while targets are held (patch
``i13-rollout-freeze-continue-as-new``), nothing new starts, targets in flight finish, held ones park,
and the rollout continues as new carrying ``RolloutCarry``; the next run goes on with the same wave.

Long wave gates (patch ``i13-rollout-gate-continue-as-new-v2``): past the bound, a gate between waves
continues as new at its next wait carrying its progress (``rollout_gates.GateBound``) and resumes there.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    import definitions.cluster
    import definitions.cluster_day2  # noqa: F401
    from definitions.rollout import (
        AbortRequest,
        ApprovalGate,
        RolloutCarry,
        RolloutInput,
        RolloutResult,
        RolloutStatus,
        SelectInput,
        SoakGate,
        TargetStatus,
        WaveApproval,
        WaveStatus,
    )
    from definitions.server import SelectServersInput, ServerTarget, ServerUpdateResult
    from definitions.steptypes import REGISTRY
    from workflows.cluster import CALL_RETRY, _call, _fail
    from workflows.freeze_guard import ROLLOUT_CONTINUE_PATCH, HistoryBound, hold_while_frozen
    from workflows.rollout_gates import (
        CONTINUE_PATCH,
        PATCH,
        GateBound,
        GateContinue,
        approval_gate,
        record_vote,
        run_wave_gates,
        with_pending,
    )
    from workflows.server import parse_input


#: Target states a run never starts again (a continued run skips them).
FINISHED = ("succeeded", "failed", "skipped", "in-sync")


@workflow.defn(name="FleetRolloutWorkflow")
class FleetRolloutWorkflow:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._status = RolloutStatus()
        self._paused = False
        self._abort: AbortRequest | None = None
        self._exhausted = False
        self._approvals: dict[int, WaveApproval] = {}
        self._inp: RolloutInput | None = None
        self._servers: dict[str, ServerTarget] = {}
        #: Wave gates by the promotion's evaluators (patch ``rollout-promotion-gates-v1``); a gate that
        #: did not pass stops the rollout with this reason.
        self._promotion_gates = False
        self._gate_failure: str | None = None
        #: Bounded histories during a long freeze (patch ``i13-rollout-freeze-continue-as-new``).
        self._bound: HistoryBound | None = None
        #: Bounded histories during long wave gates (patch ``i13-rollout-gate-continue-as-new-v2``).
        self._gate_bound = GateBound(0)
        # A continued run knows its state before its first task: a vote, pause or abort reaching it first is kept.
        try:
            early = RolloutInput.model_validate(raw)
        except ValueError:
            return  # ``run`` fails the run with the problems
        if early.carried is not None:
            self._inp = early
            self._restore(early.carried)

    # --- operator interface ------------------------------------------------------------------------

    @workflow.query
    def status(self) -> RolloutStatus:
        return with_pending(self._status) if self._promotion_gates else self._status

    @workflow.signal
    def pause(self, by: str = "") -> None:
        self._paused = True
        self._status.message = f"paused by {by or 'an operator'}; in-flight targets finish"

    @workflow.signal
    def resume(self, by: str = "") -> None:
        self._paused = False
        self._status.message = f"resumed by {by or 'an operator'}"

    @workflow.signal
    def abort(self, req: AbortRequest) -> None:
        self._abort = req

    @workflow.update
    def approve_wave(self, approval: WaveApproval) -> RolloutStatus:
        if self._promotion_gates:
            assert self._inp is not None
            try:  # the validator accepted it; never fail the workflow task over a vote
                gs, _ = approval_gate(self._status.waves[approval.wave], self._inp.rollout, approval)
            except ValueError:
                return with_pending(self._status)
            record_vote(gs, approval)
            return with_pending(self._status)
        self._approvals[approval.wave] = approval
        return self._status

    @approve_wave.validator
    def _check_approval(self, approval: WaveApproval) -> None:
        if not approval.approver.strip():
            raise ValueError("an approval needs a named approver")
        if not (0 <= approval.wave < len(self._status.waves)):
            raise ValueError(f"no wave {approval.wave} (waves 0-{len(self._status.waves) - 1})")
        assert self._inp is not None
        if self._promotion_gates:
            approval_gate(self._status.waves[approval.wave], self._inp.rollout, approval)
            return
        allowed = [a for g in self._inp.rollout.gates if isinstance(g, ApprovalGate) for a in g.approvers]
        if allowed and approval.approver not in allowed:
            raise ValueError(f"{approval.approver!r} may not approve; eligible: {', '.join(allowed)}")

    # --- run ---------------------------------------------------------------------------------------

    def _stop(self) -> bool:
        return self._abort is not None or self._exhausted or self._gate_failure is not None

    def _parking(self) -> bool:
        """The history passed its bound while a freeze held targets: nothing new starts, the rollout
        continues as new once the wave's targets finished or parked."""
        return self._bound is not None and self._bound.continuing

    async def _pause_point(self) -> None:
        if self._paused:
            await workflow.wait_condition(lambda: not self._paused or self._abort is not None or self._parking())

    async def _gates(self, index: int) -> None:
        """Gates before wave ``index`` (after the previous one finished)."""
        assert self._inp is not None
        wave = self._status.waves[index]
        if self._promotion_gates:
            wave.state = "gate"
            self._gate_failure = await run_wave_gates(
                wave, self._inp.rollout, self._status, lambda: self._abort is not None, self._gate_bound
            )
            if self._gate_failure is not None:
                wave.state = "stopped"
            await self._pause_point()
            return
        for gate in self._inp.rollout.gates:
            if self._stop():
                return
            wave.state = "gate"
            if isinstance(gate, SoakGate):
                wave.gate = f"soak {gate.duration} after wave {index - 1}"
                self._status.message = f"wave {index}: {wave.gate}"
                try:
                    await workflow.wait_condition(lambda: self._abort is not None, timeout=gate.duration)
                except TimeoutError:
                    pass
            elif isinstance(gate, ApprovalGate):
                who = f" ({', '.join(gate.approvers)})" if gate.approvers else ""
                wave.gate = f"waiting for approval{who}: update approve_wave {{wave: {index}, approver}}"
                self._status.message = f"wave {index}: {wave.gate}"
                await workflow.wait_condition(lambda: index in self._approvals or self._abort is not None)
                if index in self._approvals:
                    a = self._approvals[index]
                    wave.gate = f"approved by {a.approver}" + (f": {a.comment}" if a.comment else "")
        await self._pause_point()

    async def _target(self, t: TargetStatus, sem: asyncio.Semaphore) -> None:
        assert self._inp is not None
        inp = self._inp
        ns = inp.rollout.selector.namespace
        step = REGISTRY.get(inp.operation)
        if t.state in FINISHED:  # done in an earlier run of the chain: never again
            return
        async with sem:
            await self._pause_point()
            if self._stop() or self._parking():
                return

            def frozen(message: str) -> None:
                t.state, t.message = ("frozen" if "waiting:" in message else t.state), message

            where = inp.site.name if t.name in self._servers and inp.site else ns
            bound = self._bound
            await hold_while_frozen(
                f"{inp.operation} {where}/{t.name}", frozen, stop=bound.park if bound is not None else None
            )
            if self._stop():
                t.state = "pending"
                return
            if self._parking():  # parked at its freeze point: the next run of the chain holds on
                return
            t.state, t.message = "running", ""
            try:
                if t.name in self._servers:
                    await self._server_target(t)
                    return
                args = step.args_model.model_validate(
                    {**inp.with_, "name": t.name, "project_namespace": ns, "garden": inp.garden.model_dump()}
                )
                await workflow.execute_child_workflow(
                    step.target,
                    args,
                    id=f"{workflow.info().workflow_id}/{t.name}",
                    # the operations are gardener workflows: the rollout's own queue (as maintain does)
                    task_queue=workflow.info().task_queue,
                    result_type=dict,
                )
                t.state = "succeeded"
            except ChildWorkflowError as err:
                failure = _fail(err)
                if failure.type == "ShootNotFound":
                    t.state, t.message = "skipped", f"deleted during the rollout: {failure.message}"
                    return
                t.state, t.message = "failed", failure.message
                self._status.failures += 1
                if self._status.failures > self._status.budget:
                    self._exhausted = True

    async def _server_target(self, t: TargetStatus) -> None:
        """A server operation on one server: a ServerUpdateWorkflow on the redfish queue, whose result
        says whether it drifted (updated / staged), already matched (in-sync) or was in use (skipped)."""
        assert self._inp is not None
        inp = self._inp
        step = REGISTRY.get(inp.operation)
        try:
            args = step.args_model.model_validate({**inp.with_, **inp.server_args(self._servers[t.name])})
        except ValueError as exc:  # e.g. its BMC left the site definition since the last discovery
            t.state, t.message = "skipped", f"not in the site definition: {exc}"
            return
        res: ServerUpdateResult = await workflow.execute_child_workflow(
            step.target,
            args,
            id=f"{workflow.info().workflow_id}/{t.name}",
            task_queue=inp.server_queue,
            result_type=ServerUpdateResult,
        )
        t.drift = res.drift
        t.message = res.detail
        t.state = {"in-sync": "in-sync", "skipped": "skipped"}.get(res.outcome, "succeeded")

    async def _select(self, inp: RolloutInput) -> list[str]:
        sel = inp.rollout.selector
        if sel.kind == "server" and workflow.patched("fleet-rollout-servers-v1"):
            assert inp.site is not None
            servers: list[ServerTarget] = await workflow.execute_activity(
                "redfish.select_servers",
                SelectServersInput(
                    site=inp.site.name,
                    match_labels=sel.match_labels,
                    names=sel.names,
                    bmc_labels=inp.site.bmc_labels(),
                ),
                result_type=list[ServerTarget],
                task_queue=inp.server_queue,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=CALL_RETRY,
            )
            self._servers = {s.identity: s for s in servers}
            return list(self._servers)
        targets: list[str] = await _call(
            "gardener_select_shoots", SelectInput(selector=sel, garden=inp.garden), list[str]
        )
        return targets

    @workflow.run
    async def run(self, raw: Any) -> RolloutResult:
        # Validated here, not by the data converter: input typed into the UI that does not fit (an
        # IronCore site for a server operation, a bad wave) fails the run once, with the field path,
        # instead of failing the workflow task forever.
        inp = parse_input(
            RolloutInput,
            raw,
            '{"operation": "cluster.upgrade", "with": {"target_version": "1.31.4"}, "rollout": {"selector": '
            '{"namespace": "garden-edge", "matchLabels": {"ring": "edge"}}, "waves": [1, "100%"]}}',
        )
        gates_bounded = workflow.patched(CONTINUE_PATCH)
        self._inp = inp
        self._bound = HistoryBound(ROLLOUT_CONTINUE_PATCH, inp.continue_as_new_after)
        carried = inp.carried
        if carried is not None:  # continued as new (a long freeze, long gates): same targets, same wave
            if not gates_bounded:  # restored again (``__init__`` did), dropping signals of the first task
                self._restore(carried)  # as runs from before the patch always did
        else:
            self._promotion_gates = workflow.patched(PATCH)
            try:
                targets = await self._select(inp)
            except ActivityError as err:
                raise _fail(err) from None
            self._status.waves = [
                WaveStatus(index=i, targets=[TargetStatus(name=n) for n in wave])
                for i, wave in enumerate(inp.rollout.plan(targets))
            ]
            self._status.budget = inp.rollout.budget(len(targets))
            self._status.state = "running"
        self._gate_bound = GateBound(inp.continue_as_new_after, gates_bounded, carried.gates if carried else None)
        first = carried.wave if carried is not None else 0
        sem = asyncio.Semaphore(inp.rollout.max_in_flight)
        for wave in self._status.waves[first:]:
            if wave.index > 0 and not (carried is not None and carried.gates_done and wave.index == first):
                try:
                    await self._gates(wave.index)
                except GateContinue:  # a long gate: the next run resumes it (docs/fleet.md, "Long gates")
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    self._continue(inp, wave.index, gates_done=False)
            if self._stop():
                break
            wave.state = "running"
            self._status.message = f"wave {wave.index}: {len(wave.targets)} target(s)"
            await asyncio.gather(*(self._target(t, sem) for t in wave.targets))
            if self._parking() and not self._stop() and not self._last_done(wave):
                await self._continue_held(inp, wave)  # no child running, every held target parked
            wave.state = "stopped" if self._stop() else "done"
            if self._stop():
                break
        return self._finish()

    # --- continue-as-new during a long freeze (docs/fleet.md, "A long freeze") ----------------------

    async def _continue_held(self, inp: RolloutInput, wave: WaveStatus) -> NoReturn:
        await workflow.wait_condition(workflow.all_handlers_finished)
        open_targets = any(t.state not in FINISHED for t in wave.targets)
        if not open_targets:
            wave.state = "done"
        self._continue(inp, wave.index if open_targets else wave.index + 1, gates_done=open_targets)

    def _continue(self, inp: RolloutInput, wave: int, gates_done: bool) -> NoReturn:
        """Continue as new with wave ``wave`` next (after every handler finished), an open gate's progress carried."""
        self._status.continued += 1
        carry = RolloutCarry(
            continued=self._status.continued,
            wave=wave,
            gates_done=gates_done,
            status=self._status,
            servers=list(self._servers.values()),
            approvals=list(self._approvals.values()),
            paused=self._paused,
            abort=self._abort,
            promotion_gates=self._promotion_gates,
            gates=list(self._gate_bound.progress.values()),
        )
        workflow.continue_as_new(inp.model_copy(update={"carried": carry}))

    def _last_done(self, wave: WaveStatus) -> bool:
        """The last wave, every target finished: nothing is left for a next run."""
        return wave.index == len(self._status.waves) - 1 and all(t.state in FINISHED for t in wave.targets)

    def _restore(self, c: RolloutCarry) -> None:
        self._status = c.status
        self._servers = {s.identity: s for s in c.servers}
        self._approvals = {a.wave: a for a in c.approvals}
        self._paused, self._abort, self._promotion_gates = c.paused, c.abort, c.promotion_gates

    def _finish(self) -> RolloutResult:
        all_targets = [t for w in self._status.waves for t in w.targets]
        if self._abort is not None:
            self._status.state = "aborted"
            self._status.message = f"aborted by {self._abort.by}: {self._abort.reason}"
        elif self._gate_failure is not None:
            self._status.state = "stopped"
            self._status.message = f"{self._gate_failure}; later waves untouched"
        elif self._exhausted:
            self._status.state = "stopped"
            self._status.message = (
                f"failure budget exhausted ({self._status.failures} failed, budget {self._status.budget}); "
                "later waves untouched"
            )
        else:
            self._status.state = "done"
            self._status.message = f"{sum(t.state == 'succeeded' for t in all_targets)} target(s) succeeded"
            in_sync = sum(t.state == "in-sync" for t in all_targets)
            if in_sync:
                self._status.message += f", {in_sync} already in sync (not touched)"
        return RolloutResult(
            state=self._status.state,
            message=self._status.message,
            succeeded=[t.name for t in all_targets if t.state == "succeeded"],
            failed={t.name: t.message for t in all_targets if t.state == "failed"},
            skipped={t.name: t.message for t in all_targets if t.state == "skipped"},
            untouched=[t.name for t in all_targets if t.state in ("pending", "frozen")],
            in_sync=[t.name for t in all_targets if t.state == "in-sync"],
            waves=self._status.waves,
        )


WORKFLOWS: list[Any] = [FleetRolloutWorkflow]
