"""Temporal activities of the `redfish` queue. Each one checks state before acting, so a retry or a
re-run after a worker crash never repeats a finished side effect. Long waits (power, firmware tasks,
image download) heartbeat; short calls do one Redfish round trip and let Temporal retry.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.liveness import keep_alive_sync, kept_alive_sync, sleep_heartbeating
from activities.redfish.backend import PartUnknown, list_system_paths, redfish_server
from activities.redfish.client import ClientCache
from activities.redfish.errors import classify
from activities.redfish.interfaces import ServerInterfaces
from activities.redfish.store import FileInventoryStore
from definitions.server import (
    NON_RETRYABLE,
    BiosApply,
    BmcConnection,
    BmcProblem,
    BootRequest,
    DiscoverBmcInput,
    DiscoverBmcsInput,
    DiscoverBmcsResult,
    FirmwareStart,
    FirmwareStarted,
    ImageCheck,
    ImageChecked,
    ImageRecordPut,
    InlineInventory,
    InventoryReadInput,
    ListSystemsResult,
    MediaRequest,
    PowerRequest,
    PowerWait,
    PowerWaitResult,
    SelectServersInput,
    ServerRef,
    ServerState,
    ServerStateRead,
    ServerSummary,
    ServerTarget,
    SiteSnapshot,
    StepOutcome,
    TaskWait,
)

T = TypeVar("T")


def _const(value: object) -> Callable[[], object]:
    """The details a keep-alive repeats during one blocking request."""
    return lambda: value


def _heartbeat(detail: object = None) -> None:
    """Heartbeat when running as an activity (the functions are also called directly in tests/bench)."""
    if activity.in_activity():
        activity.heartbeat(detail)


class RedfishActivities:
    """Activities bound to a client cache and an inventory store (one instance per worker).

    Server operations go through the interfaces of ``activities.redfish.interfaces``; ``backend`` gives
    them for a server (default: the Redfish implementation over the cached sushy connection), so
    another backend, or a test's fake, stands in without touching the activities' logic.
    """

    def __init__(
        self,
        store: FileInventoryStore | None = None,
        poll_initial_s: float = 1.0,
        poll_max_s: float = 15.0,
        backend: Callable[[ServerRef], ServerInterfaces] | None = None,
    ) -> None:
        self.cache = ClientCache()
        self.store = store or FileInventoryStore()
        self.poll_initial_s = poll_initial_s
        self.poll_max_s = poll_max_s
        self.backend = backend or self._redfish

    def all(self) -> list[Callable[..., object]]:
        return [
            self.list_systems,
            self.inventory_system,
            self.discover_bmc,
            self.discover_bmcs,
            self.load_snapshot,
            self.save_snapshot,
            self.power,
            self.wait_power,
            self.bios_apply,
            self.firmware_start,
            self.wait_task,
            self.verify_image,
            self.virtual_media,
            self.set_boot,
            self.get_power,
            self.server_state,
            self.select_servers,
            self.record_image,
        ]

    def close(self) -> None:
        self.cache.close()

    # -- plumbing ------------------------------------------------------------------------------------

    def _call(self, conn: BmcConnection, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ApplicationError:
            raise
        except Exception as exc:
            self.cache.drop(conn)
            raise classify(exc, conn.label) from None

    def _redfish(self, ref: ServerRef) -> ServerInterfaces:
        return redfish_server(self.cache.get(ref.bmc), ref.bmc.url, ref.system_path)

    def _server(self, ref: ServerRef) -> ServerInterfaces:
        return self._call(ref.bmc, lambda: self.backend(ref))

    # -- discovery -----------------------------------------------------------------------------------

    @activity.defn(name="redfish.list_systems")
    def list_systems(self, conn: BmcConnection) -> ListSystemsResult:
        paths = self._call(conn, lambda: list_system_paths(self.cache.get(conn)))
        return ListSystemsResult(bmc_url=conn.url, name=conn.name, system_paths=paths)

    def _read_inventory(self, site: str, conn: BmcConnection, system_path: str, store: bool) -> ServerSummary:
        def read() -> ServerSummary:
            inv = redfish_server(self.cache.get(conn), conn.url, system_path).management.inventory()
            if store:
                self.store.put_inventory(site, inv)
            return inv.summary()

        return self._call(conn, read)

    @activity.defn(name="redfish.inventory_system")
    def inventory_system(self, req: InventoryReadInput) -> ServerSummary:
        # A full inventory is many requests to a slow BMC: heartbeat while it runs.
        with keep_alive_sync(lambda: req.target.system_path):
            return self._read_inventory(req.site, req.target.bmc, req.target.system_path, req.store)

    @activity.defn(name="redfish.discover_bmc")
    def discover_bmc(self, req: DiscoverBmcInput) -> ListSystemsResult:
        """Log in, list the systems and, when there are at most ``inline.max_systems``, read each one's
        inventory: one activity (and one session) per BMC instead of a listing plus one activity per
        system. A system whose read fails in a way no retry fixes becomes a problem of that system; a
        retryable failure fails the activity, and Temporal's retry reads the BMC again (reads only)."""
        current = {"system": ""}
        with keep_alive_sync(lambda: current["system"]):
            return self._discover(req.conn, req.inline, current)

    @activity.defn(name="redfish.discover_bmcs")
    def discover_bmcs(self, req: DiscoverBmcsInput) -> DiscoverBmcsResult:
        """``redfish.discover_bmc`` for several BMCs, one after the other (as many reads in flight as
        activities, like one BMC per activity, with a fraction of the activities and workflow tasks).
        A BMC whose failure no retry fixes (bad credentials, an answer refused) gets its problem here,
        exactly as its own activity would have reported it; one a retry may fix (unreachable, 5xx) is
        named in ``again``, for the workflow to read alone with the retry policy. Reads only: a retry of
        the whole activity (a worker lost) reads the BMCs again."""
        out = DiscoverBmcsResult()
        current = {"system": ""}
        with keep_alive_sync(lambda: current["system"]):
            for i, conn in enumerate(req.conns):
                current["system"] = conn.url
                try:
                    out.results.append(self._discover(conn, req.inline, current))
                except ApplicationError as exc:
                    if not (exc.non_retryable or exc.type in NON_RETRYABLE):
                        out.again.append(i)
                        continue
                    problem = BmcProblem(
                        bmc_url=conn.url,
                        name=conn.name,
                        error_type=exc.type or "ApplicationError",
                        message=exc.message,
                    )
                    out.results.append(ListSystemsResult(bmc_url=conn.url, name=conn.name, problem=problem))
        return out

    def _discover(self, conn: BmcConnection, inline: InlineInventory, current: dict[str, str]) -> ListSystemsResult:
        paths = self._call(conn, lambda: list_system_paths(self.cache.get(conn)))
        out = ListSystemsResult(bmc_url=conn.url, name=conn.name, system_paths=paths)
        if len(paths) > inline.max_systems:
            return out  # a chassis: the workflow fans its systems out in inventory batches
        for path in paths:
            current["system"] = path
            try:
                out.servers.append(self._read_inventory(inline.site, conn, path, inline.store))
            except ApplicationError as exc:
                if not (exc.non_retryable or exc.type in NON_RETRYABLE):
                    raise
                out.problems.append(
                    BmcProblem(
                        bmc_url=conn.url,
                        name=conn.name,
                        error_type=exc.type or "ApplicationError",
                        message=exc.message,
                        system_path=path,
                    )
                )
        out.inventoried = True
        return out

    @activity.defn(name="redfish.load_snapshot")
    def load_snapshot(self, site: str) -> SiteSnapshot:
        return self.store.load_snapshot(site)

    @activity.defn(name="redfish.save_snapshot")
    def save_snapshot(self, snap: SiteSnapshot) -> None:
        self.store.save_snapshot(snap)

    # -- fleet operations: actual state, targets, image records --------------------------------------

    @activity.defn(name="redfish.server_state")
    def server_state(self, req: ServerStateRead) -> ServerState:
        """What a fleet operation compares with its desired state: power, and on request the firmware
        inventory, BIOS attributes (current and pending) and the image the site recorded."""
        srv = self._server(req.server)
        bmc = req.server.bmc
        out = ServerState(power_state=self._call(bmc, srv.power.get_power_state))
        try:
            if req.firmware:
                out.firmware = self._call(bmc, srv.firmware.list_firmware)
            if req.bios:
                out.bios_attributes = self._call(bmc, srv.bios.get_attributes)
                out.bios_pending = self._call(bmc, srv.bios.get_pending)
        except PartUnknown as exc:
            raise ApplicationError(
                f"BMC {bmc.label}: cannot read the server's state: {exc}",
                type="RedfishOperationRejected",
                non_retryable=True,
            ) from None
        if req.image:
            out.image = self.store.get_image(req.site, req.server.identity)
        return out

    @activity.defn(name="redfish.select_servers")
    def select_servers(self, req: SelectServersInput) -> list[ServerTarget]:
        """The site's discovered servers (its last discovery snapshot) whose labels match. Labels: the
        site definition's ``bmcs[].labels`` / ``ranges[].labels``, plus ``apeiro.io/manufacturer``,
        ``apeiro.io/model`` and ``apeiro.io/site`` from the inventory."""
        snap = self.store.load_snapshot(req.site)
        if not snap.servers:
            raise ApplicationError(
                f"site {req.site} has no discovered servers (no inventory snapshot under {self.store.root}); "
                "run server.discover for the site first",
                type="SelectorMatchesNothing",
                non_retryable=True,
            )
        out = []
        for s in snap.servers:
            labels = {
                "apeiro.io/site": req.site,
                **({"apeiro.io/manufacturer": s.manufacturer} if s.manufacturer else {}),
                **({"apeiro.io/model": s.model} if s.model else {}),
                **req.bmc_labels.get(s.bmc_url, {}),
            }
            if any(labels.get(k) != v for k, v in req.match_labels.items()):
                continue
            if req.names is not None and s.identity not in req.names:
                continue
            out.append(ServerTarget(identity=s.identity, bmc_url=s.bmc_url, system_path=s.system_path, labels=labels))
        if not out:
            wanted = ",".join(f"{k}={v}" for k, v in sorted(req.match_labels.items())) or "(any)"
            names = f" and names {', '.join(req.names)}" if req.names is not None else ""
            raise ApplicationError(
                f"no server of site {req.site} matches labels {wanted}{names} ({len(snap.servers)} discovered)",
                type="SelectorMatchesNothing",
                non_retryable=True,
            )
        return sorted(out, key=lambda t: t.identity)

    @activity.defn(name="redfish.record_image")
    def record_image(self, req: ImageRecordPut) -> None:
        self.store.put_image(req.site, req.identity, req.record)

    # -- power ---------------------------------------------------------------------------------------

    @activity.defn(name="redfish.get_power")
    def get_power(self, ref: ServerRef) -> str:
        srv = self._server(ref)
        return self._call(ref.bmc, srv.power.get_power_state) or "Unknown"

    @activity.defn(name="redfish.power")
    def power(self, req: PowerRequest) -> StepOutcome:
        srv = self._server(req.server)
        state = self._call(req.server.bmc, srv.power.get_power_state)
        if req.done_when and state == req.done_when:
            return StepOutcome(changed=False, detail=f"already {state}")
        self._call(req.server.bmc, lambda: srv.power.set_power(req.action))
        return StepOutcome(changed=True, detail=f"{req.action} requested (was {state})")

    @activity.defn(name="redfish.wait_power")
    def wait_power(self, req: PowerWait) -> PowerWaitResult:
        """Poll with backoff until the power state is reached or the timeout passes (heartbeating).
        Power changes land seconds late on real BMCs (1-11 s on the emulator)."""
        srv = self._server(req.server)
        start = time.monotonic()
        delay = self.poll_initial_s
        state: str | None = None
        detail: dict[str, Any] = {}
        while True:
            with keep_alive_sync(_const(detail)):  # one BMC request may take its 30 s timeout
                state = self._call(req.server.bmc, srv.power.get_power_state)
            waited = time.monotonic() - start
            detail = {"state": state, "waited_s": round(waited, 1)}
            _heartbeat(detail)
            if state == req.target:
                return PowerWaitResult(reached=True, state=state, waited_s=waited)
            if waited >= req.timeout_s:
                return PowerWaitResult(reached=False, state=state, waited_s=waited)
            # Polls back off to poll_max_s; heartbeats continue meanwhile (heartbeat timeout 10 s).
            sleep_heartbeating(min(delay, max(0.0, req.timeout_s - waited)), detail)
            delay = min(delay * 1.5, self.poll_max_s)

    # -- bios ----------------------------------------------------------------------------------------

    @activity.defn(name="redfish.bios_apply")
    @kept_alive_sync  # heartbeats while a BMC request blocks (a killed worker is noticed in 10 s)
    def bios_apply(self, req: BiosApply) -> StepOutcome:
        """Stage the attributes that differ as pending settings (applied at the next power on)."""
        srv = self._server(req.server)
        try:
            current = self._call(req.server.bmc, srv.bios.get_attributes)
            pending = self._call(req.server.bmc, srv.bios.get_pending)
        except PartUnknown as exc:
            raise ApplicationError(
                f"BMC {req.server.bmc.label}: cannot apply BIOS attributes: {exc}",
                type="RedfishOperationRejected",
                non_retryable=True,
            ) from None
        unknown = sorted(set(req.attributes) - set(current))
        if unknown:
            raise ApplicationError(
                f"BMC {req.server.bmc.label}: BIOS has no attribute(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(current)[:20])}",
                type="RedfishOperationRejected",
                non_retryable=True,
            )
        todo = {k: v for k, v in req.attributes.items() if current.get(k) != v and pending.get(k) != v}
        if not todo:
            staged = {k for k, v in req.attributes.items() if current.get(k) != v}
            return StepOutcome(
                changed=False,
                detail="already set" if not staged else f"already pending: {', '.join(sorted(staged))}",
            )
        self._call(req.server.bmc, lambda: srv.bios.set_pending(dict(todo)))
        return StepOutcome(changed=True, detail=f"pending: {', '.join(sorted(todo))}")

    # -- firmware ------------------------------------------------------------------------------------

    @activity.defn(name="redfish.firmware_start")
    def firmware_start(self, req: FirmwareStart) -> FirmwareStarted:
        srv = self._server(req.server)
        up = req.update
        try:
            if up.component and up.version:
                items = self._call(req.server.bmc, srv.firmware.list_firmware)
                for item in items:
                    if item.id == up.component and item.version == up.version:
                        return FirmwareStarted(skipped=True, detail=f"{item.id} already at {item.version}")
            uri = self._call(
                req.server.bmc, lambda: srv.firmware.simple_update(up.image_uri, up.targets, up.transfer_protocol)
            )
        except PartUnknown as exc:
            raise ApplicationError(
                f"BMC {req.server.bmc.label}: firmware update impossible: {exc}",
                type="FirmwareUpdateFailed",
                non_retryable=True,
            ) from None
        return FirmwareStarted(skipped=False, task_uri=uri, detail=f"task {uri}")

    @activity.defn(name="redfish.wait_task")
    def wait_task(self, req: TaskWait) -> StepOutcome:
        srv = self._server(req.server)
        start = time.monotonic()
        delay = self.poll_initial_s
        progress: dict[str, Any] = {}
        while True:
            with keep_alive_sync(_const(progress)):  # one BMC request may take its 30 s timeout
                state, pct, msg = self._call(req.server.bmc, lambda: srv.firmware.task_state(req.task_uri))
            progress = {"state": state, "percent": pct}
            _heartbeat(progress)
            if state in ("Completed",):
                return StepOutcome(changed=True, detail=f"{req.what} completed: {msg}".strip())
            if state in ("Exception", "Killed", "Cancelled", "Interrupted"):
                raise ApplicationError(
                    f"BMC {req.server.bmc.label}: {req.what or 'task'} {req.task_uri} ended {state}: {msg}",
                    type="FirmwareUpdateFailed",
                    non_retryable=True,
                )
            if time.monotonic() - start >= req.timeout_s:
                raise ApplicationError(
                    f"BMC {req.server.bmc.label}: {req.what or 'task'} {req.task_uri} still {state} at "
                    f"{pct}% after {req.timeout_s}s; the BMC may need a reset",
                    type="FirmwareUpdateFailed",
                    non_retryable=True,
                )
            sleep_heartbeating(delay, progress)
            delay = min(delay * 1.5, self.poll_max_s)

    # -- image and virtual media ---------------------------------------------------------------------

    @activity.defn(name="redfish.verify_image")
    def verify_image(self, req: ImageCheck) -> ImageChecked:
        """Download the image once and check its SHA-256 before any BMC mounts it."""
        h = hashlib.sha256()
        size = 0
        try:
            with httpx.stream("GET", req.image.url, timeout=60.0, follow_redirects=True) as resp:
                if resp.status_code == 404:
                    raise ApplicationError(
                        f"image {req.image.url} does not exist (HTTP 404); fix the URL",
                        type="ImageNotFound",
                        non_retryable=True,
                    )
                if resp.status_code >= 400:
                    raise ApplicationError(
                        f"image {req.image.url}: HTTP {resp.status_code}",
                        type="ImageUnavailable",
                        non_retryable=resp.status_code < 500,
                    )
                for chunk in resp.iter_bytes(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
                    _heartbeat(size)
        except httpx.HTTPError as exc:
            raise ApplicationError(f"image {req.image.url}: {exc}", type="ImageUnavailable") from None
        digest = h.hexdigest()
        if digest != req.image.sha256.lower():
            raise ApplicationError(
                f"image {req.image.url} has SHA-256 {digest}, the definition expects {req.image.sha256}; "
                "the file changed or the checksum is wrong",
                type="ImageChecksumMismatch",
                non_retryable=True,
            )
        return ImageChecked(url=req.image.url, sha256=digest, size_bytes=size)

    @activity.defn(name="redfish.virtual_media")
    @kept_alive_sync  # heartbeats while a BMC request blocks (a killed worker is noticed in 10 s)
    def virtual_media(self, req: MediaRequest) -> StepOutcome:
        """Insert `image_url` into the CD slot (ejecting another image first), or eject (None)."""
        srv = self._server(req.server)
        bmc = req.server.bmc
        try:
            slots = self._call(bmc, srv.virtual_media.list_slots)
        except PartUnknown as exc:
            raise ApplicationError(
                f"BMC {bmc.label}: no virtual media: {exc}",
                type="RedfishOperationRejected",
                non_retryable=True,
            ) from None
        cds = [s for s in slots if {"CD", "DVD"} & set(s.media_types)] or slots
        if not cds:
            raise ApplicationError(
                f"BMC {bmc.label}: no CD/DVD virtual media slot",
                type="RedfishOperationRejected",
                non_retryable=True,
            )
        if req.image_url is None:
            inserted = [s for s in cds if s.inserted]
            for s in inserted:
                self._call(bmc, lambda s=s: srv.virtual_media.eject(s.path))  # type: ignore[misc]
            return StepOutcome(changed=bool(inserted), detail="ejected" if inserted else "nothing inserted")
        for s in cds:
            if s.inserted and s.image == req.image_url:
                return StepOutcome(changed=False, detail=f"already inserted in {s.id}")
        slot = cds[0]
        if slot.inserted:
            self._call(bmc, lambda: srv.virtual_media.eject(slot.path))
        self._call(bmc, lambda: srv.virtual_media.insert(slot.path, req.image_url or ""))
        return StepOutcome(changed=True, detail=f"inserted in {slot.id}")

    @activity.defn(name="redfish.set_boot")
    @kept_alive_sync  # heartbeats while a BMC request blocks (a killed worker is noticed in 10 s)
    def set_boot(self, req: BootRequest) -> StepOutcome:
        srv = self._server(req.server)
        cur = self._call(req.server.bmc, srv.boot.get_boot_override)
        if (
            cur.get("target") == req.target
            and cur.get("enabled") == req.enabled
            and (req.mode is None or cur.get("mode") == req.mode)
        ):
            return StepOutcome(changed=False, detail="already set")
        self._call(req.server.bmc, lambda: srv.boot.set_boot_override(req.target, req.enabled, req.mode))
        return StepOutcome(changed=True, detail=f"boot {req.target} {req.enabled} {req.mode or ''}".strip())
