"""Worker contents of the `gardener` queue: cluster workflows and garden activities."""

from __future__ import annotations

from workers.queues import QueueContents


def contents() -> QueueContents:
    from activities.gardener.activities import ACTIVITIES
    from workflows.cluster import WORKFLOWS

    return QueueContents(workflows=WORKFLOWS, activities=ACTIVITIES)
