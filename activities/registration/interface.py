"""The one interface both registration targets implement."""

from __future__ import annotations

from typing import Protocol

from definitions.server import BmcConnection, Registration, ServerSummary, SystemInventory


class Registrar(Protocol):
    target: str

    def register(
        self, server: ServerSummary, bmc: BmcConnection, inventory: SystemInventory | None
    ) -> Registration:
        """Create or update the server's record; idempotent (a second call finds the first's objects)."""
