"""Worker contents of the `ocm` queue: component transport and verification."""

from __future__ import annotations

from workers.queues import QueueContents


def contents() -> QueueContents:
    from activities.ocm.transport import ACTIVITIES
    from workflows.transport import ComponentTransportWorkflow

    return QueueContents(workflows=[ComponentTransportWorkflow], activities=list(ACTIVITIES))
