"""A workflow that raises a plain KeyError, standing in for any user-data error the engine missed."""

from __future__ import annotations

from typing import Any

from temporalio import workflow


@workflow.defn(name="RaisesKeyErrorWorkflow")
class RaisesKeyErrorWorkflow:
    @workflow.run
    async def run(self, data: dict[str, Any]) -> Any:
        return data["missing-field"]
