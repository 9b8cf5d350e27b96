"""What each task queue serves. One module per queue under `workers/`, each with `contents()`.

Adding a layer: write `workers/<queue>.py` with a `contents()` returning its workflows and activities,
and add it to :data:`QUEUE_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from definitions import queues

QUEUE_MODULES: dict[str, str] = {
    queues.PIPELINE: "workers.pipeline",
    queues.REDFISH: "workers.redfish",
    queues.GARDENER: "workers.gardener",
    queues.OCM: "workers.ocm",
    queues.KONFIDENCE: "workers.konfidence",
}


@dataclass
class QueueContents:
    workflows: Sequence[type] = field(default_factory=list)
    activities: Sequence[Callable[..., Any]] = field(default_factory=list)
    #: Called when the worker stops (close HTTP clients and the like).
    close: Callable[[], Any] | None = None


def known_queues() -> list[str]:
    return list(QUEUE_MODULES)


def contents_for(queue: str) -> QueueContents:
    try:
        module_name = QUEUE_MODULES[queue]
    except KeyError:
        raise ValueError(f"unknown task queue {queue!r}; known: {', '.join(known_queues())}") from None
    module = importlib.import_module(module_name)
    result: QueueContents = module.contents()
    return result
