"""Worker contents of the `pipeline` queue: the pipeline engine and its core activities."""

from __future__ import annotations

from workers.queues import QueueContents


def contents() -> QueueContents:
    from activities import core, notify
    from activities.freeze import ACTIVITIES as FREEZE
    from activities.pinning import pin_definition
    from workflows.fanout import FanOutWorkflow
    from workflows.freeze import FreezeWorkflow
    from workflows.pipeline import PipelineWorkflow

    acts = core.CoreActivities()
    return QueueContents(
        workflows=[PipelineWorkflow, FanOutWorkflow, FreezeWorkflow],
        activities=[*acts.all(), notify.notify, pin_definition, *FREEZE],
        close=acts.close,
    )
