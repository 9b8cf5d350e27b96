"""The step types `server.*` a pipeline may use, as one table."""

from __future__ import annotations

from datetime import timedelta

from definitions import queues
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
__all__ = ["NON_RETRYABLE", "SERVER", "STEP_TYPES"]


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
)

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
            "child workflow per server with id server-provision-<identity>",
            default_timeout=timedelta(hours=6),
        ),
        SERVER.workflow(
            "server.provision_one",
            "ServerProvisionWorkflow",
            ProvisionInput,
            ProvisionResult,
            "Provision and image one server",
            default_timeout=timedelta(hours=3),
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
