"""Worker contents of the `ocm` queue: component transport and verification, CTF export and import."""

from __future__ import annotations

from workers.allocator import tune_for_streaming
from workers.queues import QueueContents


def contents() -> QueueContents:
    tune_for_streaming()  # blob copies: keep their ~1 MiB buffers in the heap (workers/allocator.py)
    from activities.ocm.ctf_export import ACTIVITIES as CTF_EXPORT
    from activities.ocm.ctf_import import ACTIVITIES as CTF_IMPORT
    from activities.ocm.transport import ACTIVITIES
    from workflows.ctf import CtfExportWorkflow, CtfImportWorkflow
    from workflows.transport import ComponentTransportWorkflow

    return QueueContents(
        workflows=[ComponentTransportWorkflow, CtfExportWorkflow, CtfImportWorkflow],
        activities=[*ACTIVITIES, *CTF_EXPORT, *CTF_IMPORT],
    )
