"""The baseline of bench.pipeline: the same DAG as a hand-written workflow (kept in its own small
module so the workflow sandbox imports nothing else)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import queues
    from definitions.core_steps import EchoArgs


@workflow.defn(name="HandWrittenDag")
class HandWrittenDag:
    """The same DAG written by hand: each layer runs in parallel once the previous one finished."""

    @workflow.run
    async def run(self, shape: list[int]) -> int:
        layers, width = shape
        previous: list[dict[str, Any]] = []
        for layer in range(layers):
            prev_n = previous[0]["n"] if previous else 0
            previous = list(
                await asyncio.gather(
                    *(
                        workflow.execute_activity(
                            "core.echo",
                            EchoArgs(values={"layer": layer, "n": j, "prev": prev_n}),
                            task_queue=queues.PIPELINE,
                            start_to_close_timeout=timedelta(minutes=1),
                            result_type=dict,
                        )
                        for j in range(width)
                    )
                )
            )
        return layers * width
