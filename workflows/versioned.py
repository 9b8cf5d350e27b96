"""Each workflow type's Worker Deployment Versioning behaviour, and the classes versioned workers run.

Why not ``@workflow.defn(versioning_behavior=...)`` on the workflow classes themselves: a Temporal
server refuses a workflow task completion that carries a versioning behaviour from a worker that is
not versioned ("versioning behavior cannot be specified without deployment options being set with
versioned mode"), so every unversioned worker (development, the tests, `apeiro dev up`) would stop
working. Versioned workers (``apeiro worker --build-id``) register the subclasses below instead:
same type name, same handlers, the declared behaviour added.

- PINNED: short runs finish on the build they started on (the old workers drain them).
- AUTO_UPGRADE: long-lived runs (the coordinator, promotions, pipelines that wait on approvals,
  maintenance that waits for windows) move to the new build at their next task, so every change
  to them goes behind ``workflow.patched`` (docs/architecture.md, "Changing a workflow").
"""

from __future__ import annotations

import functools
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

from workflows.cluster import (
    ClusterCreateWorkflow,
    ClusterDeleteWorkflow,
    ClusterMaintainWorkflow,
    ClusterUpgradeWorkflow,
)
from workflows.cluster_day2 import ClusterHibernationWorkflow, ClusterRotateCredentialsWorkflow
from workflows.ctf import CtfExportWorkflow, CtfImportWorkflow
from workflows.fanout import FanOutWorkflow
from workflows.freeze import FreezeWorkflow
from workflows.pipeline import PipelineWorkflow
from workflows.promotion import PromotionCoordinatorWorkflow, PromotionStepWorkflow, PromotionWorkflow
from workflows.rollout import FleetRolloutWorkflow
from workflows.server import (
    ServerDiscoveryWorkflow,
    ServerInventoryBatchWorkflow,
    ServerListBatchWorkflow,
    ServerProvisionFleetWorkflow,
    ServerProvisionWorkflow,
)
from workflows.server_claim import ServerClaimWorkflow
from workflows.server_update import ServerUpdateWorkflow
from workflows.transport import ComponentTransportWorkflow

PINNED = VersioningBehavior.PINNED
AUTO_UPGRADE = VersioningBehavior.AUTO_UPGRADE

#: The behaviour of every workflow type a worker registers (a unit test checks none is missing).
BEHAVIOURS: dict[str, VersioningBehavior] = {
    "PipelineWorkflow": AUTO_UPGRADE,
    "FanOutWorkflow": PINNED,
    "PromotionWorkflow": AUTO_UPGRADE,
    "PromotionCoordinatorWorkflow": AUTO_UPGRADE,
    "PromotionStepWorkflow": AUTO_UPGRADE,
    "ClusterCreateWorkflow": PINNED,
    "ClusterUpgradeWorkflow": PINNED,
    "ClusterDeleteWorkflow": PINNED,
    "ClusterMaintainWorkflow": AUTO_UPGRADE,
    "ComponentTransportWorkflow": PINNED,
    "ServerListBatchWorkflow": PINNED,
    "ServerInventoryBatchWorkflow": PINNED,
    "ServerDiscoveryWorkflow": PINNED,
    "ServerProvisionWorkflow": PINNED,
    "ServerProvisionFleetWorkflow": PINNED,
    "ServerClaimWorkflow": PINNED,
    "ServerUpdateWorkflow": PINNED,
    "CtfExportWorkflow": PINNED,
    "CtfImportWorkflow": PINNED,
    "ClusterHibernationWorkflow": PINNED,
    # Long-lived: credential rotation may pause between its two phases for days, a freeze lasts until
    # it ends, a rollout waits on soaks and approvals between waves.
    "ClusterRotateCredentialsWorkflow": AUTO_UPGRADE,
    "FreezeWorkflow": AUTO_UPGRADE,
    "FleetRolloutWorkflow": AUTO_UPGRADE,
}


def _type_name(cls: type) -> str:
    name = workflow._Definition.must_from_class(cls).name
    assert name is not None
    return name


def versioned(cls: type, variant_name: str) -> type:
    """``cls`` under its own type name with the declared behaviour (handlers are inherited; the run
    method is re-declared because the SDK wants it on the class itself)."""
    name = _type_name(cls)
    base_run = cls.run  # type: ignore[attr-defined]

    @functools.wraps(base_run)
    async def run(self: Any, *args: Any) -> Any:
        return await base_run(self, *args)

    run.__qualname__ = f"{variant_name}.run"  # the SDK checks where run is defined by these two
    run.__module__ = __name__
    sub = type(variant_name, (cls,), {"run": workflow.run(run), "__module__": __name__, "__qualname__": variant_name})
    return workflow.defn(name=name, versioning_behavior=BEHAVIOURS[name])(sub)


# Module-level names: the workflow sandbox imports a workflow class by its module and name.
PipelineWorkflowVersioned = versioned(PipelineWorkflow, "PipelineWorkflowVersioned")
FanOutWorkflowVersioned = versioned(FanOutWorkflow, "FanOutWorkflowVersioned")
PromotionWorkflowVersioned = versioned(PromotionWorkflow, "PromotionWorkflowVersioned")
PromotionCoordinatorWorkflowVersioned = versioned(PromotionCoordinatorWorkflow, "PromotionCoordinatorWorkflowVersioned")
PromotionStepWorkflowVersioned = versioned(PromotionStepWorkflow, "PromotionStepWorkflowVersioned")
ClusterCreateWorkflowVersioned = versioned(ClusterCreateWorkflow, "ClusterCreateWorkflowVersioned")
ClusterUpgradeWorkflowVersioned = versioned(ClusterUpgradeWorkflow, "ClusterUpgradeWorkflowVersioned")
ClusterDeleteWorkflowVersioned = versioned(ClusterDeleteWorkflow, "ClusterDeleteWorkflowVersioned")
ClusterMaintainWorkflowVersioned = versioned(ClusterMaintainWorkflow, "ClusterMaintainWorkflowVersioned")
ComponentTransportWorkflowVersioned = versioned(ComponentTransportWorkflow, "ComponentTransportWorkflowVersioned")
ServerListBatchWorkflowVersioned = versioned(ServerListBatchWorkflow, "ServerListBatchWorkflowVersioned")
ServerInventoryBatchWorkflowVersioned = versioned(ServerInventoryBatchWorkflow, "ServerInventoryBatchWorkflowVersioned")
ServerDiscoveryWorkflowVersioned = versioned(ServerDiscoveryWorkflow, "ServerDiscoveryWorkflowVersioned")
ServerProvisionWorkflowVersioned = versioned(ServerProvisionWorkflow, "ServerProvisionWorkflowVersioned")
ServerProvisionFleetWorkflowVersioned = versioned(ServerProvisionFleetWorkflow, "ServerProvisionFleetWorkflowVersioned")

ServerClaimWorkflowVersioned = versioned(ServerClaimWorkflow, "ServerClaimWorkflowVersioned")
ServerUpdateWorkflowVersioned = versioned(ServerUpdateWorkflow, "ServerUpdateWorkflowVersioned")
CtfExportWorkflowVersioned = versioned(CtfExportWorkflow, "CtfExportWorkflowVersioned")
CtfImportWorkflowVersioned = versioned(CtfImportWorkflow, "CtfImportWorkflowVersioned")
ClusterHibernationWorkflowVersioned = versioned(ClusterHibernationWorkflow, "ClusterHibernationWorkflowVersioned")
ClusterRotateCredentialsWorkflowVersioned = versioned(
    ClusterRotateCredentialsWorkflow, "ClusterRotateCredentialsWorkflowVersioned"
)
FreezeWorkflowVersioned = versioned(FreezeWorkflow, "FreezeWorkflowVersioned")
FleetRolloutWorkflowVersioned = versioned(FleetRolloutWorkflow, "FleetRolloutWorkflowVersioned")

VARIANTS: dict[str, type] = {
    _type_name(c): c
    for c in [
        PipelineWorkflowVersioned,
        FanOutWorkflowVersioned,
        PromotionWorkflowVersioned,
        PromotionCoordinatorWorkflowVersioned,
        PromotionStepWorkflowVersioned,
        ClusterCreateWorkflowVersioned,
        ClusterUpgradeWorkflowVersioned,
        ClusterDeleteWorkflowVersioned,
        ClusterMaintainWorkflowVersioned,
        ComponentTransportWorkflowVersioned,
        ServerListBatchWorkflowVersioned,
        ServerInventoryBatchWorkflowVersioned,
        ServerDiscoveryWorkflowVersioned,
        ServerProvisionWorkflowVersioned,
        ServerProvisionFleetWorkflowVersioned,
        ServerClaimWorkflowVersioned,
        ServerUpdateWorkflowVersioned,
        CtfExportWorkflowVersioned,
        CtfImportWorkflowVersioned,
        ClusterHibernationWorkflowVersioned,
        ClusterRotateCredentialsWorkflowVersioned,
        FreezeWorkflowVersioned,
        FleetRolloutWorkflowVersioned,
    ]
}


def for_versioned_worker(cls: type) -> type:
    """The class a versioned worker registers for ``cls``: its variant, or ``cls`` itself (test
    probes; the worker's default behaviour, PINNED, applies to them)."""
    return VARIANTS.get(_type_name(cls), cls)
