"""Worker contents of the `redfish` queue: server discovery, provisioning, registration, IronCore claims,
fleet operations (firmware, BIOS, image with drift)."""

from __future__ import annotations

from workers.queues import QueueContents


def workflows() -> list[type]:
    """The queue's workflows (tests run them with their own activity instances)."""
    from workflows.server import (
        ServerDiscoveryWorkflow,
        ServerInventoryBatchWorkflow,
        ServerListBatchWorkflow,
        ServerProvisionFleetWorkflow,
        ServerProvisionWorkflow,
    )
    from workflows.server_claim import ServerClaimWorkflow
    from workflows.server_update import ServerUpdateWorkflow

    return [
        ServerDiscoveryWorkflow,
        ServerListBatchWorkflow,
        ServerInventoryBatchWorkflow,
        ServerProvisionWorkflow,
        ServerProvisionFleetWorkflow,
        ServerClaimWorkflow,
        ServerUpdateWorkflow,
    ]


def contents() -> QueueContents:
    from activities.redfish.activities import RedfishActivities
    from activities.registration.activity import RegistrationActivities
    from activities.registration.claims import ClaimActivities

    acts = RedfishActivities()
    reg = RegistrationActivities(store=acts.store)
    return QueueContents(
        workflows=workflows(),
        activities=[*acts.all(), *reg.all(), *ClaimActivities().all()],
        close=acts.close,
    )
