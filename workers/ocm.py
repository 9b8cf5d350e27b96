"""Worker contents of the `ocm` queue: component transport and verification, CTF export and import."""

from __future__ import annotations

from workers.queues import QueueContents


def contents() -> QueueContents:
    from activities.ocm.ctf_export import ACTIVITIES as CTF_EXPORT
    from activities.ocm.ctf_import import ACTIVITIES as CTF_IMPORT
    from activities.ocm.transport import ACTIVITIES
    from workflows.ctf import CtfExportWorkflow, CtfImportWorkflow
    from workflows.transport import ComponentTransportWorkflow

    return QueueContents(
        workflows=[ComponentTransportWorkflow, CtfExportWorkflow, CtfImportWorkflow],
        activities=[*ACTIVITIES, *CTF_EXPORT, *CTF_IMPORT],
    )
