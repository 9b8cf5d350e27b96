"""Server lifecycle workflows: discovery (fan-out in child batches) and provisioning (one per server).

Deterministic orchestration only: every Redfish call, download and file write is an activity on the
`redfish` queue. Histories stay small at 1,000 systems: the parent only starts child workflows, each
child reads a bounded batch, and full inventories go to the inventory store (summaries come back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.failures import failure_info
from workflows.server_claim import API_RETRY, ServerClaimWorkflow
from workflows.step_activity import execute_step_activity

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from definitions.server import (
        NON_RETRYABLE,
        BiosApply,
        BmcConnection,
        BmcProblem,
        BootRequest,
        DiscoverBmcInput,
        DiscoverBmcsInput,
        DiscoverBmcsResult,
        DiscoverInput,
        DiscoverResult,
        DiscoveryDiff,
        DiscoveryProgress,
        FirmwareStart,
        FirmwareStarted,
        FirmwareUpdate,
        ImageCheck,
        ImageChecked,
        InlineInventory,
        InventoryBatchInput,
        InventoryBatchResult,
        InventoryReadInput,
        ListBatchInput,
        ListBatchResult,
        ListSystemsResult,
        MediaRequest,
        OsReport,
        PowerRequest,
        PowerWait,
        PowerWaitResult,
        ProvisionFailure,
        ProvisionFleetInput,
        ProvisionFleetResult,
        ProvisionInput,
        ProvisionResult,
        ServerChange,
        ServerRef,
        ServerSummary,
        SiteDefinition,
        SiteSnapshot,
        StepOutcome,
        SystemTarget,
        TaskWait,
        claim_workflow_id,
        provision_workflow_id,
    )
    from definitions.validate import pydantic_problems
    from workflows.activity_options import HEARTBEAT_TIMEOUT

T = TypeVar("T")

#: BMC calls: a 503-ing BMC gets about a minute to recover; what retries cannot fix fails at once.
#: The same policy as the metal-operator API calls of a claim.
BMC_RETRY = API_RETRY
PROBE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=2,
    non_retryable_error_types=list(NON_RETRYABLE),
)
SHORT = timedelta(seconds=60)
MAX_PARALLEL_CHILDREN = 8
#: workflow.patched() id (issue 15): one `redfish.discover_bmc` activity per BMC (log in, list, read the
#: inventories), its batches spread evenly over at most MAX_PARALLEL_CHILDREN lanes that share
#: `concurrency`; runs started before it replay the list-then-inventory path.
PATCH_ONE_ACTIVITY_PER_BMC = "i15-discovery-one-activity-per-bmc"
#: workflow.patched() id (issue 15, second pass): BMCs go `DiscoverInput.bmcs_per_activity` at a time to one
#: `redfish.discover_bmcs` activity (ListBatchInput.bmcs_per_activity); runs started before it replay
#: with one `redfish.discover_bmc` per BMC.
PATCH_BMC_GROUPS = "i15-discovery-bmc-groups"


async def bounded(factories: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T | BaseException]:
    """Run the awaitables with at most `limit` in flight; results (or exceptions) in input order.
    (asyncio.gather with a semaphore: a TaskGroup's ExceptionGroup would fail the workflow task.)"""
    sem = asyncio.Semaphore(max(1, limit))

    async def one(f: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await f()

    return list(await asyncio.gather(*(one(f) for f in factories), return_exceptions=True))


M = TypeVar("M", bound="BaseModel")


#: What a top-level input looks like, shown when JSON typed into the UI does not fit its model.
EXAMPLE_INPUTS: dict[type[BaseModel], str] = {
    DiscoverInput: '{"site": {"name": "edge-1", "credentials": {"lab": '
    '{"username": "admin", "password_ref": "env:BMC_PASSWORD"}}, "default_credentials": '
    '"lab", "bmcs": [{"url": "https://10.0.0.5"}]}}',
    ProvisionInput: '{"server": {"identity": "...", "bmc": {"url": "https://10.0.0.5", '
    '"credentials": {...}}, "system_path": "/redfish/v1/Systems/1"}, "spec": {...}}',
    ProvisionFleetInput: '{"site": {...}, "servers": [<discovery summaries>], '
    '"spec": {"image": {"url": "...", "sha256": "..."}}}',
}


def parse_input(model: type[M], raw: Any, example: str) -> M:
    """Validate a top-level workflow's input inside the workflow. Typed into the Temporal UI, JSON that
    does not fit the model would otherwise fail the workflow *task* (retried forever, shown as
    Running); here it fails the workflow once, with every problem and its path."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(str(p) for p in pydantic_problems(exc))
        raise ApplicationError(
            f"invalid {model.__name__}: {problems}. Expected e.g. {example}",
            type="InvalidInput",
            non_retryable=True,
        ) from None


def bmc_problem(err: BaseException, bmc: BmcConnection, system_path: str | None = None) -> BmcProblem:
    """What discovery reports for a BMC (or one of its systems) it could not read: the root cause."""
    etype, msg = failure_info(err)
    return BmcProblem(bmc_url=bmc.url, name=bmc.name, error_type=etype, message=msg, system_path=system_path)


def require_valid_site(site: SiteDefinition) -> None:
    """A site definition with problems fails the workflow once, listing them all."""
    problems = site.problems()
    if problems:
        raise ApplicationError(
            "invalid site definition: " + "; ".join(problems), type="InvalidSiteDefinition", non_retryable=True
        )


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def spread(items: Sequence[T], size: int, slots: int) -> list[list[T]]:
    """`items` in groups of at most `size`, as many groups as a multiple of `slots` (when there are
    enough items) and of even sizes, so `slots` groups in flight end together instead of one slot
    reading a last group alone."""
    if not items:
        return []
    n = len(items)
    count = -(-n // max(1, size))
    count = min(n, -(-count // max(1, slots)) * max(1, slots))
    out, start = [], 0
    for k in range(count):
        end = start + n // count + (1 if k < n % count else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def proportional(n: int, shares: Sequence[int]) -> list[int]:
    """`n` items split in proportion to `shares` (the remainder one each from the first). Equal counts
    over lanes of shares 2,2,1,1,1,1 (300 BMCs, 8 reads in flight) left the 1-read lanes reading alone,
    4 reads in flight, for the second half of the run."""
    total = max(1, sum(shares))
    sizes = [n * share // total for share in shares]
    for j in range(n - sum(sizes)):
        sizes[j % len(sizes)] += 1
    return sizes


def diff_snapshots(previous: Sequence[ServerSummary], current: Sequence[ServerSummary]) -> DiscoveryDiff:
    before = {s.identity: s for s in previous}
    after = {s.identity: s for s in current}
    changed = []
    compare = (
        "bmc_url",
        "system_path",
        "manufacturer",
        "model",
        "serial",
        "processor_count",
        "logical_processor_count",
        "memory_gib",
        "macs",
        "bios_version",
        "fingerprint",
    )
    for ident in sorted(set(before) & set(after)):
        fields = [f for f in compare if getattr(before[ident], f) != getattr(after[ident], f)]
        if fields:
            changed.append(ServerChange(identity=ident, fields=fields))
    return DiscoveryDiff(
        added=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)), changed=changed
    )


async def bmc_act(
    step: str,
    name: str,
    arg: Any,
    result_type: type[T],
    *,
    start_to_close: timedelta = SHORT,
    heartbeat: timedelta | None = None,
) -> T:
    """One BMC activity; a failure becomes the workflow's own, non-retryable, naming ``step`` (the root
    cause's type: ImageNotFound, BmcAuthenticationFailed...)."""
    return await execute_step_activity(
        step, name, arg, result_type, start_to_close=start_to_close, heartbeat=heartbeat, retry_policy=BMC_RETRY
    )


async def wait_power(step: str, ref: ServerRef, target: Literal["On", "Off"], timeout_s: int) -> PowerWaitResult:
    return await bmc_act(
        step,
        "redfish.wait_power",
        PowerWait(server=ref, target=target, timeout_s=timeout_s),
        PowerWaitResult,
        start_to_close=timedelta(seconds=timeout_s + 120),
        heartbeat=HEARTBEAT_TIMEOUT,
    )


async def update_firmware(step: str, ref: ServerRef, up: FirmwareUpdate, timeout_s: int) -> bool:
    """Start one firmware update and wait for its task; False when the BMC had nothing to do."""
    started = await bmc_act(step, "redfish.firmware_start", FirmwareStart(server=ref, update=up), FirmwareStarted)
    if started.skipped or not started.task_uri:
        return False
    await bmc_act(
        step,
        "redfish.wait_task",
        TaskWait(server=ref, task_uri=started.task_uri, timeout_s=timeout_s, what=f"firmware update {up.image_uri}"),
        StepOutcome,
        start_to_close=timedelta(seconds=timeout_s + 120),
        heartbeat=HEARTBEAT_TIMEOUT,
    )
    return True


async def power_must_reach(step: str, ref: ServerRef, target: Literal["On", "Off"], timeout_s: int, after: str) -> None:
    """Wait for a power state; a server still elsewhere after ``timeout_s`` fails the workflow."""
    reached = await wait_power(step, ref, target, timeout_s)
    if not reached.reached:
        raise ApplicationError(
            f"server {ref.identity} at {ref.bmc.label} is still {reached.state} {timeout_s}s after {after}",
            type="PowerStateTimeout",
        )


async def power_off(step: str, ref: ServerRef, graceful_s: int, timeout_s: int) -> StepOutcome:
    """Graceful shutdown; ForceOff when the server is not Off after ``graceful_s`` (at least 1 s)."""
    off = await bmc_act(
        step, "redfish.power", PowerRequest(server=ref, action="GracefulShutdown", done_when="Off"), StepOutcome
    )
    if off.changed:
        reached = await wait_power(step, ref, "Off", max(graceful_s, 1))
        if not reached.reached:
            workflow.logger.info("graceful shutdown of %s timed out; forcing", ref.identity)
            await bmc_act(
                step, "redfish.power", PowerRequest(server=ref, action="ForceOff", done_when="Off"), StepOutcome
            )
            await power_must_reach(step, ref, "Off", timeout_s, "ForceOff")
    return off


@workflow.defn
class ServerListBatchWorkflow:
    """List the systems behind a batch of BMCs. An unreachable BMC becomes a problem, not a failure."""

    @workflow.run
    async def run(self, inp: ListBatchInput) -> ListBatchResult:
        async def one(conn: BmcConnection) -> ListSystemsResult:
            try:
                res: ListSystemsResult
                # A scanned address with no BMC behind it must not cost a minute of retries.
                retry = PROBE_RETRY if conn.probe else BMC_RETRY
                if inp.inline is not None:  # set by the parent's patched path only (see ListBatchInput)
                    res = await workflow.execute_activity(
                        "redfish.discover_bmc",
                        DiscoverBmcInput(conn=conn, inline=inp.inline),
                        result_type=ListSystemsResult,
                        start_to_close_timeout=timedelta(seconds=conn.timeout_s * (3 + 10 * inp.inline.max_systems)),
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                        retry_policy=retry,
                    )
                    return res
                res = await workflow.execute_activity(
                    "redfish.list_systems",
                    conn,
                    result_type=ListSystemsResult,
                    start_to_close_timeout=timedelta(seconds=conn.timeout_s * 3),
                    retry_policy=retry,
                )
                return res
            except ActivityError as exc:
                return ListSystemsResult(bmc_url=conn.url, name=conn.name, problem=bmc_problem(exc, conn))

        async def group(conns: list[BmcConnection]) -> list[ListSystemsResult]:
            """Several BMCs in one `redfish.discover_bmcs`; a BMC it hands back (a retry may fix its
            failure), or every BMC of a group whose activity failed as a whole, is read alone by `one`."""
            assert inp.inline is not None
            if len(conns) == 1:
                return [await one(conns[0])]
            res = DiscoverBmcsResult()
            try:
                res = await workflow.execute_activity(
                    "redfish.discover_bmcs",
                    DiscoverBmcsInput(conns=conns, inline=inp.inline),
                    result_type=DiscoverBmcsResult,
                    start_to_close_timeout=timedelta(
                        seconds=sum(c.timeout_s for c in conns) * (3 + 10 * inp.inline.max_systems)
                    ),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=BMC_RETRY,
                )
                again = set(res.again)
            except ActivityError:
                again = set(range(len(conns)))
            if len(res.results) + len(again) != len(conns):
                again = set(range(len(conns)))
            read = iter(res.results)
            return [await one(c) if i in again else next(read) for i, c in enumerate(conns)]

        if inp.inline is not None and inp.bmcs_per_activity > 1:
            # Scanned addresses keep an activity each (PROBE_RETRY, and most of them answer nothing).
            groups = spread([c for c in inp.bmcs if not c.probe], inp.bmcs_per_activity, inp.concurrency)
            groups += [[c] for c in inp.bmcs if c.probe]
            units = await bounded([lambda g=g: group(g) for g in groups], inp.concurrency)  # type: ignore[misc]
            by_url: dict[str, ListSystemsResult | BaseException] = {}
            for batch, unit in zip(groups, units, strict=True):
                read: list[ListSystemsResult | BaseException] = (
                    list(unit) if isinstance(unit, list) else [unit] * len(batch)
                )
                by_url.update((conn.url, r) for conn, r in zip(batch, read, strict=True))
            results: list[ListSystemsResult | BaseException] = [by_url[c.url] for c in inp.bmcs]
        else:
            results = await bounded([lambda c=c: one(c) for c in inp.bmcs], inp.concurrency)  # type: ignore[misc]
        out = ListBatchResult(results=[])
        for conn, r in zip(inp.bmcs, results, strict=True):
            if not isinstance(r, ListSystemsResult):
                continue
            if conn.probe and r.problem is not None and r.problem.error_type == "BmcUnreachable":
                out.addresses_without_bmc += 1
                out.silent_urls.append(conn.url)
            else:
                out.results.append(r)
        return out


@workflow.defn
class ServerInventoryBatchWorkflow:
    """Read the full inventory of a batch of systems; returns summaries (inventories go to the store)."""

    @workflow.run
    async def run(self, inp: InventoryBatchInput) -> InventoryBatchResult:
        out = InventoryBatchResult()

        async def one(t: SystemTarget) -> None:
            try:
                summary: ServerSummary = await workflow.execute_activity(
                    "redfish.inventory_system",
                    InventoryReadInput(site=inp.site, target=t, store=inp.store_inventory),
                    result_type=ServerSummary,
                    start_to_close_timeout=timedelta(seconds=t.bmc.timeout_s * 10),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=BMC_RETRY,
                )
                out.servers.append(summary)
            except ActivityError as exc:
                out.problems.append(bmc_problem(exc, t.bmc, t.system_path))

        await bounded([lambda t=t: one(t) for t in inp.targets], inp.concurrency)  # type: ignore[misc]
        out.servers.sort(key=lambda s: (s.bmc_url, s.system_path))
        return out


@workflow.defn
class ServerDiscoveryWorkflow:
    """Discover a site: list every BMC's systems, read every system's inventory, compare with the
    previous discovery of the same site. States (query `status`): validating -> listing ->
    inventorying -> comparing -> done, with BMCs done of total and problems so far (DiscoveryProgress).
    The counters move when a child batch ends; they are workflow state only (no commands)."""

    def __init__(self) -> None:
        self._status = DiscoveryProgress()
        self._systems_left: dict[str, int] = {}  # BMC url -> systems not yet inventoried

    @workflow.query
    def status(self) -> DiscoveryProgress:
        return self._status

    async def _discover_in_lanes(
        self, inp: DiscoverInput, conns: list[BmcConnection], wid: str
    ) -> tuple[list[list[BmcConnection]], list[ListBatchResult | BaseException]]:
        """One `redfish.discover_bmc` per BMC (patched i15-discovery-bmc-groups: up to `bmcs_per_activity`
        BMCs per `redfish.discover_bmcs`), in child batches of at most `bmcs_per_batch`. The BMCs are
        split over `lanes` (at most MAX_PARALLEL_CHILDREN, at most `concurrency`; evenly before the
        patch, in proportion to each lane's share of `concurrency` after it); a lane
        runs its batches one after the other with its share of `concurrency`, so `concurrency` reads
        stay in flight until the end (fixed batches handed to 8 slots left a slow tail: 1,000 BMCs
        in 10 batches ran the last 2 with 2 reads in flight)."""
        n = len(conns)
        lanes = max(1, min(MAX_PARALLEL_CHILDREN, inp.concurrency, -(-n // inp.bmcs_per_batch)))
        inline = InlineInventory(site=inp.site.name, store=inp.store_inventory, max_systems=inp.systems_inline)
        grouped = workflow.patched(PATCH_BMC_GROUPS)
        per_activity = inp.bmcs_per_activity if grouped else 1
        shares = [inp.concurrency // lanes + (1 if k < inp.concurrency % lanes else 0) for k in range(lanes)]
        if grouped:
            sizes = proportional(n, shares)
        else:
            sizes = [n // lanes + (1 if k < n % lanes else 0) for k in range(lanes)]
        plan: list[tuple[int, list[list[BmcConnection]]]] = []  # per lane: its concurrency, its batches
        start = 0
        for share, size in zip(shares, sizes, strict=True):
            plan.append((share, chunks(conns[start : start + size], inp.bmcs_per_batch)))
            start += size
        batches = [b for _, lane_batches in plan for b in lane_batches]
        results: list[ListBatchResult | BaseException] = [ApplicationError("not run")] * len(batches)
        first = [0]
        for _, lane_batches in plan[:-1]:
            first.append(first[-1] + len(lane_batches))

        async def run_lane(k: int) -> None:
            share, lane_batches = plan[k]
            for j, b in enumerate(lane_batches):
                i = first[k] + j
                try:
                    results[i] = await self._counted(
                        workflow.execute_child_workflow(
                            ServerListBatchWorkflow.run,
                            ListBatchInput(bmcs=b, concurrency=share, inline=inline, bmcs_per_activity=per_activity),
                            id=f"{wid}/list-{i}",
                            task_queue=workflow.info().task_queue,
                        ),
                        b,
                        self._listed,
                    )
                except Exception as exc:  # a failed child: its BMCs become problems, the lane goes on
                    results[i] = exc

        await asyncio.gather(*(run_lane(k) for k in range(lanes)))
        return batches, results

    async def _counted(self, child: Awaitable[T], batch: Any, done: Callable[[Any, Any], None]) -> T:
        """Await a child batch, then count it (`done(batch, result or exception)`)."""
        try:
            res = await child
        except Exception as exc:
            done(batch, exc)
            raise
        done(batch, res)
        return res

    def _listed(self, batch: list[BmcConnection], res: ListBatchResult | BaseException) -> None:
        if isinstance(res, BaseException):
            self._status.bmcs_done += len(batch)
            self._status.problems += len(batch)
            return
        waiting = {
            r.bmc_url: len(r.system_paths)
            for r in res.results
            if r.problem is None and r.system_paths and not r.inventoried
        }
        self._systems_left.update(waiting)
        for r in res.results:  # read by the activity that listed them (redfish.discover_bmc)
            if r.problem is None and r.inventoried:
                self._status.systems_total += len(r.system_paths)
                self._status.systems_done += len(r.system_paths)
                self._status.problems += len(r.problems)
        self._status.bmcs_done += len(batch) - len(waiting)
        self._status.problems += sum(1 for r in res.results if r.problem is not None)

    def _inventoried(self, batch: list[SystemTarget], res: InventoryBatchResult | BaseException) -> None:
        self._status.systems_done += len(batch)
        self._status.problems += len(batch) if isinstance(res, BaseException) else len(res.problems)
        for t in batch:
            left = self._systems_left.get(t.bmc.url, 0) - 1
            self._systems_left[t.bmc.url] = left
            if left == 0:
                self._status.bmcs_done += 1

    @workflow.run
    async def run(self, raw: Any) -> DiscoverResult:
        inp = parse_input(DiscoverInput, raw, EXAMPLE_INPUTS[DiscoverInput])
        self._status.state = "validating"
        require_valid_site(inp.site)
        conns = inp.site.connections()
        wid = workflow.info().workflow_id

        self._status.state, self._status.bmcs_total = "listing", len(conns)
        list_batches: list[list[BmcConnection]]
        listed: list[ListBatchResult | BaseException]
        if workflow.patched(PATCH_ONE_ACTIVITY_PER_BMC):
            list_batches, listed = await self._discover_in_lanes(inp, conns, wid)
        else:
            list_batches = chunks(conns, inp.bmcs_per_batch)
            per_child = max(1, -(-inp.concurrency // min(MAX_PARALLEL_CHILDREN, len(list_batches))))
            listed = await bounded(
                [
                    lambda i=i, b=b: self._counted(  # type: ignore[misc]
                        workflow.execute_child_workflow(
                            ServerListBatchWorkflow.run,
                            ListBatchInput(bmcs=b, concurrency=per_child),
                            id=f"{wid}/list-{i}",
                            task_queue=workflow.info().task_queue,
                        ),
                        b,
                        self._listed,
                    )
                    for i, b in enumerate(list_batches)
                ],
                MAX_PARALLEL_CHILDREN,
            )
        result = DiscoverResult(site=inp.site.name, servers=[], bmcs_total=len(conns))
        by_url = {c.url: c for c in conns}
        targets: list[SystemTarget] = []
        silent: set[str] = set()
        for batch, res in zip(list_batches, listed, strict=True):
            if isinstance(res, BaseException):
                result.problems += [bmc_problem(res, c) for c in batch]
                continue
            result.addresses_without_bmc += res.addresses_without_bmc
            silent.update(res.silent_urls)
            for r in res.results:
                if r.problem:
                    result.problems.append(r.problem)
                    continue
                result.bmcs_reachable += 1
                if r.inventoried:  # read by the activity that listed them
                    result.servers += r.servers
                    result.problems += r.problems
                    continue
                targets += [SystemTarget(bmc=by_url[r.bmc_url], system_path=p) for p in r.system_paths]

        self._status.state = "inventorying"
        self._status.systems_total += len(targets)
        inv_batches = chunks(targets, inp.systems_per_batch)
        if inv_batches:
            per_child = max(1, -(-inp.concurrency // min(MAX_PARALLEL_CHILDREN, len(inv_batches))))
            read = await bounded(
                [
                    lambda i=i, b=b: self._counted(  # type: ignore[misc]
                        workflow.execute_child_workflow(
                            ServerInventoryBatchWorkflow.run,
                            InventoryBatchInput(
                                site=inp.site.name,
                                targets=b,
                                concurrency=per_child,
                                store_inventory=inp.store_inventory,
                            ),
                            id=f"{wid}/inventory-{i}",
                            task_queue=workflow.info().task_queue,
                        ),
                        b,
                        self._inventoried,
                    )
                    for i, b in enumerate(inv_batches)
                ],
                MAX_PARALLEL_CHILDREN,
            )
            for batch_t, rb in zip(inv_batches, read, strict=True):
                if isinstance(rb, BaseException):
                    result.problems += [bmc_problem(rb, t.bmc, t.system_path) for t in batch_t]
                    continue
                result.servers += rb.servers
                result.problems += rb.problems

        # Two systems reporting one identity (cloned UUIDs happen) would collide downstream.
        seen: dict[str, ServerSummary] = {}
        for s in result.servers:
            if s.identity in seen:
                result.problems.append(
                    BmcProblem(
                        bmc_url=s.bmc_url,
                        error_type="DuplicateIdentity",
                        system_path=s.system_path,
                        message=f"{s.system_path} reports identity {s.identity}, already seen at "
                        f"{seen[s.identity].bmc_url}{seen[s.identity].system_path}; skipped",
                    )
                )
            else:
                seen[s.identity] = s
        result.servers = sorted(seen.values(), key=lambda s: s.identity)
        result.identities = [s.identity for s in result.servers]

        if inp.compare_with_previous:
            self._status.state = "comparing"
            prev: SiteSnapshot = await workflow.execute_activity(
                "redfish.load_snapshot",
                inp.site.name,
                result_type=SiteSnapshot,
                start_to_close_timeout=SHORT,
                retry_policy=BMC_RETRY,
            )
            # A BMC that did not answer this time does not mean its servers were removed.
            failed_bmcs = {p.bmc_url for p in result.problems if p.system_path is None} | silent
            previous = [s for s in prev.servers if s.bmc_url not in failed_bmcs]
            result.diff = diff_snapshots(previous, result.servers)
            result.diff.previous_run = prev.run_id
            await workflow.execute_activity(
                "redfish.save_snapshot",
                SiteSnapshot(site=inp.site.name, servers=result.servers, run_id=workflow.info().run_id),
                start_to_close_timeout=SHORT,
                retry_policy=BMC_RETRY,
            )
        # Final numbers: duplicate identities found above count as problems too.
        self._status.state, self._status.servers = "done", len(result.servers)
        self._status.problems, self._status.bmcs_done = len(result.problems), len(conns)
        return result


@workflow.defn
class ServerProvisionWorkflow:
    """Provision and image one server. Workflow id: `server-provision-<identity>`.

    States (query `status`): power-off -> bios -> firmware -> image-check -> media-insert -> boot-cd ->
    power-on -> waiting-for-os -> media-eject -> boot-disk -> done (or failed). Signal `report_in`
    with an :class:`OsReport` when the installed OS is up.
    """

    def __init__(self) -> None:
        self._state = "starting"
        self._report: OsReport | None = None
        self._result: ProvisionResult | None = None
        self._identity = ""
        self._ignored_reports = 0
        self._boot_failure: str | None = None

    @workflow.signal
    def os_booted(self, event: Any) -> None:
        """The webhook gateway's boot callback (`definitions/webhooks.yaml`, route `boot`): a mapping
        with server, boot_id, status (booted/failed), os_image, ip, message. Same acceptance rules as
        `report_in`; a `failed` status ends the wait with ServerBootFailed."""
        data = event if isinstance(event, dict) else {}
        report = OsReport(
            identity=str(data.get("server", "")),
            hostname=str(data.get("hostname") or data.get("server") or "") or None,
            addresses=[str(data["ip"])] if data.get("ip") else [],
        )
        if str(data.get("status", "booted")) == "failed":
            if self._state in ("power-on", "waiting-for-os") and (
                not report.identity or report.identity.lower() == self._identity
            ):
                self._boot_failure = str(data.get("message") or "the OS reported a failed boot")
                return
        self.report_in(report)

    @workflow.signal
    def report_in(self, report: OsReport) -> None:
        """Accept a report only once the server was powered on with the image, and only for this
        server: a report from an earlier boot or a mistyped identity must not end the wait."""
        if self._state not in ("power-on", "waiting-for-os"):
            self._ignored_reports += 1
            workflow.logger.warning("ignoring a report-in during %s (not booted from the image yet)", self._state)
            return
        if report.identity and self._identity and report.identity.lower() != self._identity:
            self._ignored_reports += 1
            workflow.logger.warning("ignoring a report-in for %s (this is %s)", report.identity, self._identity)
            return
        self._report = report

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {
            "state": self._state,
            "done": self._result.steps_done if self._result else [],
            "reported_in": self._report is not None,
            "ignored_reports": self._ignored_reports,
        }

    async def _act(self, name: str, arg: Any, result_type: type[T], **options: Any) -> T:
        """:func:`bmc_act` (same options) in the current step."""
        return await bmc_act(self._state, name, arg, result_type, **options)

    async def _wait_power(self, ref: ServerRef, target: Literal["On", "Off"], timeout_s: int) -> PowerWaitResult:
        return await wait_power(self._state, ref, target, timeout_s)

    async def _step(self, state: str, name: str, arg: Any, *, start_to_close: timedelta = SHORT) -> None:
        """A step that is one Redfish call answering a StepOutcome: done, or skipped when nothing changed.
        The activity heartbeats while a BMC request blocks, so a killed worker is noticed within
        HEARTBEAT_TIMEOUT, not after ``start_to_close`` (timeouts are not part of replay's check)."""
        self._state = state
        self._note(
            state, await self._act(name, arg, StepOutcome, start_to_close=start_to_close, heartbeat=HEARTBEAT_TIMEOUT)
        )

    def _note(self, step: str, outcome: StepOutcome | None = None, changed: bool = True) -> None:
        assert self._result is not None
        if outcome is not None:
            changed = outcome.changed
        (self._result.steps_done if changed else self._result.steps_skipped).append(step)

    @workflow.run
    async def run(self, raw: Any) -> ProvisionResult:
        inp = parse_input(ProvisionInput, raw, EXAMPLE_INPUTS[ProvisionInput])
        spec = inp.spec
        if inp.site is not None and inp.site.backend == "ironcore" and workflow.patched("site-backend"):
            # metal-operator owns this site's servers: claim one instead of driving its BMC.
            self._state = "claiming"
            try:
                claimed: ProvisionResult = await workflow.execute_child_workflow(
                    ServerClaimWorkflow.run,
                    inp,
                    id=claim_workflow_id(inp.server.identity),
                    task_queue=workflow.info().task_queue,
                )
            except ChildWorkflowError as exc:
                etype, msg = failure_info(exc)  # the root cause's type (ClaimUnbound, ServerError...)
                raise ApplicationError(msg, type=etype, non_retryable=True) from exc
            self._state = "done"
            return claimed
        try:
            ref = inp.resolve()
        except ValueError as exc:
            raise ApplicationError(str(exc), type="InvalidSiteDefinition", non_retryable=True) from None
        self._identity = ref.identity.lower()
        self._result = ProvisionResult(identity=ref.identity)

        # 1. power off: graceful, then forced after the grace period.
        self._state = "power-off"
        off = await power_off(self._state, ref, spec.graceful_shutdown_timeout_s, spec.power_timeout_s)
        self._note("power-off", off)

        # 2. BIOS attributes as pending settings (applied when the server powers on).
        if spec.bios_attributes:
            await self._step("bios", "redfish.bios_apply", BiosApply(server=ref, attributes=spec.bios_attributes))

        # 3. firmware updates, one task at a time.
        for i, up in enumerate(spec.firmware):
            self._state = f"firmware-{i}"
            self._note(self._state, changed=await update_firmware(self._state, ref, up, spec.firmware_timeout_s))

        if spec.image is not None:
            # 4. the image must match its checksum before a BMC boots it.
            self._state = "image-check"
            await self._act(
                "redfish.verify_image",
                ImageCheck(image=spec.image),
                ImageChecked,
                start_to_close=timedelta(minutes=30),
                heartbeat=HEARTBEAT_TIMEOUT,
            )
            self._note("image-check")
            await self._step(
                "media-insert",
                "redfish.virtual_media",
                MediaRequest(server=ref, image_url=spec.image.url),
                start_to_close=timedelta(minutes=10),
            )
            await self._step(
                "boot-cd", "redfish.set_boot", BootRequest(server=ref, target="Cd", enabled="Once", mode=spec.boot_mode)
            )

        # 5. power on (applies pending BIOS settings, boots the CD once).
        self._state = "power-on"
        on = await self._act("redfish.power", PowerRequest(server=ref, action="On", done_when="On"), StepOutcome)
        await power_must_reach(self._state, ref, "On", spec.power_timeout_s, "power on")
        self._note("power-on", on)

        if spec.image is not None:
            # 6. wait for the OS to report in (callback signal), then make the disk the boot device.
            self._state = "waiting-for-os"
            try:
                await workflow.wait_condition(
                    lambda: self._report is not None or self._boot_failure is not None,
                    timeout=timedelta(seconds=spec.report_in_timeout_s),
                )
            except TimeoutError:
                raise ApplicationError(
                    f"server {ref.identity} ({ref.bmc.label}{ref.system_path}) booted {spec.image.url} but "
                    f"did not report in within {spec.report_in_timeout_s}s; check its console (virtual "
                    "media boot, network to the callback URL) and re-run",
                    type="ServerDidNotReportIn",
                    non_retryable=True,
                ) from None
            if self._report is None:
                raise ApplicationError(
                    f"server {ref.identity} ({ref.bmc.label}{ref.system_path}) reported a failed boot of "
                    f"{spec.image.url}: {self._boot_failure}",
                    type="ServerBootFailed",
                    non_retryable=True,
                )
            self._result.os_report = self._report
            self._note("os-reported-in")
            await self._step("media-eject", "redfish.virtual_media", MediaRequest(server=ref, image_url=None))
            await self._step(
                "boot-disk",
                "redfish.set_boot",
                BootRequest(server=ref, target="Hdd", enabled="Continuous", mode=spec.boot_mode),
            )

        self._result.power_state = "On"
        self._state = "done"
        return self._result


@workflow.defn
class ServerProvisionFleetWorkflow:
    """Provision many servers, one `ServerProvisionWorkflow` child each, `concurrency` at a time.
    A failed server is reported, the others go on."""

    @workflow.run
    async def run(self, raw: Any) -> ProvisionFleetResult:
        inp = parse_input(ProvisionFleetInput, raw, EXAMPLE_INPUTS[ProvisionFleetInput])
        require_valid_site(inp.site)
        conns = {c.url: c for c in inp.site.connections()}
        out = ProvisionFleetResult()

        async def one(s: ServerSummary) -> None:
            conn = conns.get(s.bmc_url)
            if conn is None:
                out.failed.append(ProvisionFailure.unknown_bmc(s, inp.site.name))
                return
            ref = ServerRef(identity=s.identity, bmc=conn, system_path=s.system_path)
            try:
                if inp.site.backend == "ironcore" and workflow.patched("site-backend"):
                    # metal-operator owns the site's servers: a claim each, never the BMC.
                    await workflow.execute_child_workflow(
                        ServerClaimWorkflow.run,
                        ProvisionInput(server=s, site=inp.site, spec=inp.spec),
                        id=claim_workflow_id(s.identity),
                        task_queue=workflow.info().task_queue,
                    )
                else:
                    await workflow.execute_child_workflow(
                        ServerProvisionWorkflow.run,
                        ProvisionInput(server=ref, spec=inp.spec),
                        id=provision_workflow_id(s.identity),
                        task_queue=workflow.info().task_queue,
                    )
                out.provisioned.append(s.identity)
            except Exception as exc:  # a child failure, or WorkflowAlreadyStartedError (another run has it)
                etype, msg = failure_info(exc)
                out.failed.append(ProvisionFailure(identity=s.identity, error_type=etype, message=msg))

        await bounded([lambda s=s: one(s) for s in inp.servers], inp.concurrency)  # type: ignore[misc]
        out.provisioned.sort()
        out.failed.sort(key=lambda f: f.identity)
        return out
