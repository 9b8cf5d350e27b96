"""Reading inventories: one system, or every system behind a BMC (the CLI and the bench use this)."""

from __future__ import annotations

from sushy import exceptions as sx

from activities.redfish.backend import list_system_paths, redfish_server
from activities.redfish.client import connect
from activities.redfish.errors import classify
from definitions.server import BmcConnection, BmcInventory


def read_bmc_inventory(conn: BmcConnection) -> BmcInventory:
    """Every system behind one BMC. A BMC that cannot be read yields an inventory with `error` set."""
    try:
        root = connect(conn)
        systems = [redfish_server(root, conn.url, path).management.inventory() for path in list_system_paths(root)]
    except (sx.SushyError, OSError) as exc:
        err = classify(exc, conn.label)
        return BmcInventory(bmc_url=conn.url, name=conn.name, error=err.message, error_type=err.type)
    except Exception as exc:  # an ApplicationError from the secret resolver, or a surprise
        err = classify(exc, conn.label)
        return BmcInventory(bmc_url=conn.url, name=conn.name, error=err.message, error_type=err.type)
    return BmcInventory(bmc_url=conn.url, name=conn.name, systems=systems)
