"""The `server.register` activity: one registrar, every server of the input (heartbeating)."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.liveness import keep_alive_sync
from activities.redfish.store import FileInventoryStore
from activities.registration.interface import Registrar
from definitions.server import ProvisionFailure, RegisterInput, RegisterResult


class RegistrationActivities:
    def __init__(
        self,
        store: FileInventoryStore | None = None,
        registrar_factory: Callable[[RegisterInput], Registrar] | None = None,
    ) -> None:
        self.store = store or FileInventoryStore()
        self.registrar_factory = registrar_factory or default_registrar

    def all(self) -> list[Callable[..., object]]:
        return [self.register]

    @activity.defn(name="server.register")
    def register(self, inp: RegisterInput) -> RegisterResult:
        registrar = self.registrar_factory(inp)
        conns = {c.url: c for c in inp.site.connections()}
        out = RegisterResult()
        for s in inp.servers:
            if activity.in_activity():
                activity.heartbeat(s.identity)
            conn = conns.get(s.bmc_url)
            if conn is None:
                out.failed.append(ProvisionFailure.unknown_bmc(s, inp.site.name))
                continue
            try:
                # Ironic's manage/provide take seconds per server: heartbeat meanwhile (timeout 15 s).
                with keep_alive_sync(lambda: s.identity):  # noqa: B023 (used within this iteration)
                    out.registered.append(
                        registrar.register(s, conn, self.store.get_inventory(inp.site.name, s.identity))
                    )
            except ApplicationError as exc:
                if not exc.non_retryable:
                    raise
                out.failed.append(
                    ProvisionFailure(identity=s.identity, error_type=exc.type or "Error", message=exc.message)
                )
        return out


def default_registrar(inp: RegisterInput) -> Registrar:
    if inp.target == "ironcore":
        from activities.registration.ironcore import IronCoreRegistrar

        beat = lambda what: activity.heartbeat(what) if activity.in_activity() else None  # noqa: E731
        if inp.discovery_timeout_s:
            return IronCoreRegistrar(heartbeat=beat, discovery_timeout=inp.discovery_timeout_s)
        return IronCoreRegistrar(heartbeat=beat)
    from activities.registration.ironic import IronicRegistrar

    return IronicRegistrar(endpoint=inp.ironic_endpoint, provide=inp.provide, deploy_image=inp.deploy_image)
