"""Worker contents of the `gardener` queue: cluster workflows (lifecycle and day-2), fleet rollouts, garden
activities, and the gate measurements (Prometheus, HTTP probe, calendar) of the gates between waves."""

from __future__ import annotations

from workers.queues import QueueContents


def contents() -> QueueContents:
    from activities.freeze import ACTIVITIES as FREEZE
    from activities.gardener.activities import ACTIVITIES
    from activities.gardener.connections import close_all
    from activities.gardener.day2 import ACTIVITIES as DAY2_ACTIVITIES
    from activities.gardener.select import ACTIVITIES as SELECT
    from activities.konfidence import GATE_ACTIVITIES
    from workflows.cluster import WORKFLOWS
    from workflows.cluster_day2 import WORKFLOWS as DAY2_WORKFLOWS
    from workflows.rollout import WORKFLOWS as ROLLOUT

    return QueueContents(
        workflows=[*WORKFLOWS, *DAY2_WORKFLOWS, *ROLLOUT],
        activities=[*ACTIVITIES, *DAY2_ACTIVITIES, *SELECT, *FREEZE, *GATE_ACTIVITIES],
        close=close_all,
    )
