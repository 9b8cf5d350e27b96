"""The step types `server.*` a pipeline may use, as one table."""

from __future__ import annotations

from datetime import timedelta

from definitions import queues
from definitions.server.fleet import BiosUpdateInput, FirmwareUpdateInput, ImageUpdateInput, ServerUpdateResult
from definitions.server.messages import (
    DiscoverInput,
    DiscoverResult,
    ProvisionFleetInput,
    ProvisionFleetResult,
    ProvisionInput,
    ProvisionResult,
    RegisterInput,
    RegisterResult,
)
from definitions.steptypes import StepTable, register_all

#: Error types a retry cannot fix; the pipeline engine and operators can match on them.
__all__ = ["FLEET_NON_RETRYABLE", "NON_RETRYABLE", "SERVER", "STEP_TYPES"]


NON_RETRYABLE = (
    "BmcAuthenticationFailed",
    "BmcTlsError",
    "InvalidSiteDefinition",
    "ImageNotFound",
    "ImageChecksumMismatch",
    "ServerDidNotReportIn",
    "ServerBootFailed",
    "FirmwareUpdateFailed",
    "RedfishOperationRejected",
    "SecretNotFound",
    "SecretUnavailable",
    # backend ironcore (metal-operator)
    "ServerNotDiscovered",
    "ServerError",
    "ClaimUnbound",
    "ClaimDeleted",
    "ServerPowerTimeout",
    "BmcUnresolvable",
)
#: The fleet operations (server.firmware/bios/image) add their own.
FLEET_NON_RETRYABLE = (*NON_RETRYABLE, "InvalidInput", "UnsupportedOnIronCore", "DriftPersists")

SERVER = StepTable(task_queue=queues.REDFISH, non_retryable_errors=NON_RETRYABLE)

STEP_TYPES = register_all(
    [
        SERVER.workflow(
            "server.discover",
            "ServerDiscoveryWorkflow",
            DiscoverInput,
            DiscoverResult,
            "Discover a site's BMCs and read a full inventory of every system (fan-out, bounded)",
            default_timeout=timedelta(hours=2),
        ),
        SERVER.workflow(
            "server.provision",
            "ServerProvisionFleetWorkflow",
            ProvisionFleetInput,
            ProvisionFleetResult,
            "Provision and image servers (BIOS, firmware, Garden Linux via virtual media), one "
            "child workflow per server with id server-provision-<identity>; on a site with backend "
            "ironcore, one ServerClaimWorkflow per server (server-claim-<identity>) instead",
            default_timeout=timedelta(hours=6),
        ),
        SERVER.workflow(
            "server.provision_one",
            "ServerProvisionWorkflow",
            ProvisionInput,
            ProvisionResult,
            "Provision and image one server (a site with backend ironcore: claimed through metal-operator)",
            default_timeout=timedelta(hours=3),
        ),
        SERVER.workflow(
            "server.claim_one",
            "ServerClaimWorkflow",
            ProvisionInput,
            ProvisionResult,
            "Provision one server of an ironcore site through metal-operator: register its BMC, wait for "
            "the Server to be Available, claim it with the image and ignition (server.provision_one does "
            "this by itself for a site with backend ironcore)",
            default_timeout=timedelta(hours=1),
        ),
        *(
            SERVER.workflow(
                name,
                "ServerUpdateWorkflow",
                model,
                ServerUpdateResult,
                f"{what} of one server if it differs (drift), else reported in-sync and untouched; a server "
                "in use (powered On) is skipped, drained or not according to in_use (usable in waves: "
                "fleet.rollout with selector.kind server)",
                default_timeout=timedelta(hours=3),
                non_retryable_errors=FLEET_NON_RETRYABLE,
            )
            for name, model, what in (
                ("server.firmware", FirmwareUpdateInput, "Update the firmware (Redfish SimpleUpdate)"),
                ("server.bios", BiosUpdateInput, "Set BIOS attributes"),
                ("server.image", ImageUpdateInput, "Re-image with Garden Linux via virtual media"),
            )
        ),
        SERVER.activity(
            "server.register",
            RegisterInput,
            RegisterResult,
            "Register servers in IronCore (metal.ironcore.dev BMC/BMCSecret/Server) or Ironic",
            start_to_close=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=15),  # per server, and per Ironic poll
            default_timeout=timedelta(hours=1),
        ),
    ]
)
