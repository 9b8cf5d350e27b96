"""Worker contents of the `redfish` queue: server discovery, provisioning, registration, IronCore claims."""

from __future__ import annotations

from workers.queues import QueueContents


def contents() -> QueueContents:
    from activities.redfish.activities import RedfishActivities
    from activities.registration.activity import RegistrationActivities
    from activities.registration.claims import ClaimActivities
    from workflows.server import (
        ServerDiscoveryWorkflow,
        ServerInventoryBatchWorkflow,
        ServerListBatchWorkflow,
        ServerProvisionFleetWorkflow,
        ServerProvisionWorkflow,
    )

    acts = RedfishActivities()
    reg = RegistrationActivities(store=acts.store)
    return QueueContents(
        workflows=[
            ServerDiscoveryWorkflow,
            ServerListBatchWorkflow,
            ServerInventoryBatchWorkflow,
            ServerProvisionWorkflow,
            ServerProvisionFleetWorkflow,
        ],
        activities=[*acts.all(), *reg.all(), *ClaimActivities().all()],
        close=acts.close,
    )
