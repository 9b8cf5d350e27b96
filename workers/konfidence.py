"""Worker contents of the `konfidence` queue: promotion workflows and their activities."""

from __future__ import annotations

from workers.queues import QueueContents


def contents() -> QueueContents:
    from activities.freeze import ACTIVITIES as FREEZE
    from activities.konfidence import ACTIVITIES
    from workflows.promotion import WORKFLOWS

    return QueueContents(workflows=WORKFLOWS, activities=[*ACTIVITIES, *FREEZE])
