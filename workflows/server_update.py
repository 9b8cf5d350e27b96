"""ServerUpdateWorkflow (queue ``redfish``): firmware, BIOS settings or a Garden Linux re-image of one
server, only if it differs from the desired state (drift). Step types ``server.firmware``,
``server.bios``, ``server.image``; a rollout runs one per target (``fleet.rollout``, selector kind
``server``).

read the actual state -> compare (drift) -> in sync: done, untouched -> in use (powered On)? skip,
drain (graceful shutdown, then ForceOff) or proceed (ForceOff) -> apply -> power on again if it was
On -> read again and compare (what still differs fails the workflow with ``DriftPersists``).
A re-image runs the provisioning (``ServerProvisionWorkflow``, id ``server-provision-<identity>``,
so the boot callback reaches it) and records the image for the site.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

from workflows.failures import failure_info
from workflows.server import (
    SHORT,
    ServerProvisionWorkflow,
    bmc_act,
    parse_input,
    power_off,
    update_firmware,
    wait_power,
)

with workflow.unsafe.imports_passed_through():
    from definitions.server import (
        BiosApply,
        ImageRecord,
        ImageRecordPut,
        PowerRequest,
        ProvisionInput,
        ProvisionResult,
        ProvisionSpec,
        ServerState,
        ServerStateRead,
        ServerUpdateInput,
        ServerUpdateResult,
        StepOutcome,
        ironcore_refusal,
        provision_workflow_id,
    )


def firmware_drift(inp: ServerUpdateInput, state: ServerState) -> list[str]:
    have = {item.id: item.version for item in state.firmware}
    return [
        f"{up.component} {have.get(up.component) or '(absent)'} -> {up.version}"
        for up in inp.firmware
        if have.get(up.component) != up.version
    ]


def bios_drift(inp: ServerUpdateInput, state: ServerState) -> tuple[list[str], list[str]]:
    """(differs and not staged, differs but already pending)."""
    todo: list[str] = []
    pending: list[str] = []
    for key, want in sorted(inp.bios_attributes.items()):
        cur = state.bios_attributes.get(key, "(absent)")
        if cur == want:
            continue
        (pending if state.bios_pending.get(key) == want else todo).append(f"{key} {cur} -> {want}")
    return todo, pending


def image_drift(inp: ServerUpdateInput, state: ServerState) -> list[str]:
    assert inp.image is not None
    rec = state.image
    if rec is not None and rec.sha256.lower() == inp.image.sha256.lower():
        return []
    have = f"{rec.url} ({rec.sha256[:12]})" if rec else "no image recorded"
    return [f"image {have} -> {inp.image.url} ({inp.image.sha256[:12]})"]


@workflow.defn(name="ServerUpdateWorkflow")
class ServerUpdateWorkflow:
    def __init__(self) -> None:
        self._state = "starting"
        self._drift: list[str] = []

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {"state": self._state, "drift": self._drift}

    async def _read(self, inp: ServerUpdateInput) -> ServerState:
        op = inp.operation
        read = ServerStateRead(
            server=inp.server, site=inp.site, firmware=op == "firmware", bios=op == "bios", image=op == "image"
        )
        return await bmc_act(self._state, "redfish.server_state", read, ServerState)

    def _compare(self, inp: ServerUpdateInput, state: ServerState) -> tuple[list[str], list[str]]:
        if inp.operation == "firmware":
            return firmware_drift(inp, state), []
        if inp.operation == "bios":
            return bios_drift(inp, state)
        return image_drift(inp, state), []

    @workflow.run
    async def run(self, raw: Any) -> ServerUpdateResult:
        inp = parse_input(
            ServerUpdateInput,
            raw,
            '{"operation": "firmware", "site": "edge-1", "server": {"identity": "...", "bmc": {"url": '
            '"https://10.0.0.5", "credentials": {...}}, "system_path": "/redfish/v1/Systems/1"}, "firmware": '
            '[{"image_uri": "http://images/bios-2.0.0.bin", "component": "BIOS", "version": "2.0.0"}]}',
        )
        ref = inp.server
        result = ServerUpdateResult(identity=ref.identity, operation=inp.operation, outcome="updated")
        if inp.backend == "ironcore":
            raise ApplicationError(
                ironcore_refusal(inp.site, inp.operation), type="UnsupportedOnIronCore", non_retryable=True
            )

        self._state = "reading"
        state = await self._read(inp)
        result.power_before = state.power_state
        drift, pending = self._compare(inp, state)
        self._drift = result.drift = drift + [f"{p} (pending)" for p in pending]
        in_use = state.power_state not in ("Off", None)
        if not drift and not pending:
            self._state = result.outcome = "in-sync"
            result.detail = "already matches the desired state; not touched"
            return result
        if not drift and not in_use:
            self._state = result.outcome = "staged"
            result.detail = "BIOS settings already pending; they apply at the next power on"
            return result
        if in_use and inp.in_use == "skip":
            self._state = result.outcome = "skipped"
            result.detail = f"in use (power {state.power_state}); policy inUse: skip"
            return result

        if inp.operation == "image":
            return await self._image(inp, result)

        # firmware / BIOS: take an in-use server down first (drain: graceful; proceed: forced).
        if in_use:
            self._state = "drain" if inp.in_use == "drain" else "power-off"
            if inp.in_use == "drain":
                await power_off(self._state, ref, inp.drain_timeout_s, inp.power_timeout_s)
            else:
                await bmc_act(
                    self._state,
                    "redfish.power",
                    PowerRequest(server=ref, action="ForceOff", done_when="Off"),
                    StepOutcome,
                )
                await self._reach(inp, "Off")
        if inp.operation == "firmware":
            have = {item.id: item.version for item in state.firmware}
            for i, up in enumerate(inp.firmware):
                if have.get(up.component) == up.version:
                    continue
                self._state = f"firmware-{i}"
                await update_firmware(self._state, ref, up, inp.firmware_timeout_s)
        else:
            self._state = "bios"
            await bmc_act(
                self._state, "redfish.bios_apply", BiosApply(server=ref, attributes=inp.bios_attributes), StepOutcome
            )
        if in_use:
            # Back on: it was running (and BIOS settings apply at this power on).
            self._state = "power-on"
            await bmc_act(
                self._state, "redfish.power", PowerRequest(server=ref, action="On", done_when="On"), StepOutcome
            )
            await self._reach(inp, "On")

        self._state = "verifying"
        after = await self._read(inp)
        left, staged = self._compare(inp, after)
        if left or (staged and in_use):
            raise ApplicationError(
                f"server {ref.identity}: still differs after the {inp.operation} update: {'; '.join(left + staged)}",
                type="DriftPersists",
                non_retryable=True,
            )
        self._state = result.outcome = "staged" if staged else "updated"
        result.detail = (
            "BIOS settings staged; they apply at the next power on (the server was Off)"
            if staged
            else f"{inp.operation} updated" + (f" ({inp.in_use}, powered on again)" if in_use else " (server Off)")
        )
        return result

    async def _reach(self, inp: ServerUpdateInput, target: Any) -> None:
        reached = await wait_power(self._state, inp.server, target, inp.power_timeout_s)
        if not reached.reached:
            raise ApplicationError(
                f"server {inp.server.identity} at {inp.server.bmc.label} is still {reached.state} "
                f"{inp.power_timeout_s}s after {self._state}",
                type="PowerStateTimeout",
            )

    async def _image(self, inp: ServerUpdateInput, result: ServerUpdateResult) -> ServerUpdateResult:
        """Re-image as provisioning does (power off, virtual media, boot, report-in, boot disk)."""
        assert inp.image is not None
        self._state = "imaging"
        spec = ProvisionSpec(
            image=inp.image,
            # drain: a graceful shutdown first; proceed: ForceOff after a second.
            graceful_shutdown_timeout_s=inp.drain_timeout_s if inp.in_use == "drain" else 0,
            power_timeout_s=inp.power_timeout_s,
            report_in_timeout_s=inp.report_in_timeout_s,
        )
        try:
            done: ProvisionResult = await workflow.execute_child_workflow(
                ServerProvisionWorkflow.run,
                ProvisionInput(server=inp.server, spec=spec),
                id=provision_workflow_id(inp.server.identity),
                task_queue=workflow.info().task_queue,
            )
        except ChildWorkflowError as exc:
            etype, msg = failure_info(exc)
            raise ApplicationError(msg, type=etype, non_retryable=True) from exc
        self._state = "recording"
        await workflow.execute_activity(
            "redfish.record_image",
            ImageRecordPut(
                site=inp.site,
                identity=inp.server.identity,
                record=ImageRecord(url=inp.image.url, sha256=inp.image.sha256, by=workflow.info().workflow_id),
            ),
            start_to_close_timeout=SHORT,
        )
        self._state = result.outcome = "updated"
        reported = done.os_report.hostname if done.os_report and done.os_report.hostname else "the OS"
        result.detail = f"re-imaged with {inp.image.url}; {reported} reported in"
        return result


WORKFLOWS: list[Any] = [ServerUpdateWorkflow]
