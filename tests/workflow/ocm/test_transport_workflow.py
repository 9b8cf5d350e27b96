"""ComponentTransportWorkflow's orchestration with stand-in activities (time-skipping server)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from definitions.ocm import (
    BlobCopyInput,
    BlobCopyResult,
    BlobTask,
    ComponentVersionRef,
    FinaliseInput,
    ManifestCopyInput,
    RepositorySpec,
    SigningSpec,
    TransportedVersion,
    TransportInput,
    TransportPlan,
    TransportResult,
    VersionPlan,
)
from workers.worker import workflow_runner
from workflows.transport import ComponentTransportWorkflow

pytestmark = pytest.mark.workflow


class Fakes:
    def __init__(self, fail_blob: str | None = None) -> None:
        self.running = 0
        self.peak = 0
        self.order: list[str] = []
        self.fail_blob = fail_blob

    def activities(self) -> list[object]:
        @activity.defn(name="ocm.plan_transport")
        async def plan(inp: TransportInput) -> TransportPlan:
            blobs = [BlobTask(src_repo="s", dst_repo="d", digest=f"sha256:{i:064x}", size=10) for i in range(10)]
            return TransportPlan(
                versions=[
                    VersionPlan(name="acme/base", version="1", action="skip"),
                    VersionPlan(name="acme/app", version="1", action="copy", blobs=blobs),
                ]
            )

        @activity.defn(name="ocm.copy_blob")
        async def copy(inp: BlobCopyInput) -> BlobCopyResult:
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await asyncio.sleep(0.02)
                if inp.blob.digest == self.fail_blob:
                    raise ApplicationError("blob is tampered", type="DigestMismatch", non_retryable=True)
                return BlobCopyResult(digest=inp.blob.digest, size=10, bytes_sent=10)
            finally:
                self.running -= 1
                self.order.append("copy")

        @activity.defn(name="ocm.copy_manifests")
        async def manifests(inp: ManifestCopyInput) -> list[str]:
            return []

        @activity.defn(name="ocm.finalise_version")
        async def finalise(inp: FinaliseInput) -> TransportedVersion:
            self.order.append("finalise")
            return TransportedVersion(
                name=inp.plan.name, version=inp.plan.version, outcome="copied", signature_digest="ab" * 32
            )

        return [plan, copy, manifests, finalise]


def _input(parallel: int) -> TransportInput:
    return TransportInput(
        source=RepositorySpec(url="http://src:5000/ocm"),
        target=RepositorySpec(url="http://dst:5000/ocm"),
        components=[ComponentVersionRef(name="acme/app", version="1")],
        parallel_blobs=parallel,
        sign=SigningSpec(name="site", private_key_ref="env:KEY"),
    )


async def test_bounded_parallel_copies_then_finalise(ts_env: WorkflowEnvironment) -> None:
    fakes = Fakes()
    queue = f"ocm-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[ComponentTransportWorkflow],
        activities=fakes.activities(),
        workflow_runner=workflow_runner(),
    ):
        result = await ts_env.client.execute_workflow(
            "ComponentTransportWorkflow", _input(3), id=queue, task_queue=queue, result_type=TransportResult
        )
    assert fakes.peak == 3  # bounded by parallel_blobs, and actually parallel
    assert fakes.order[-1] == "finalise" and fakes.order.count("copy") == 10
    assert [v.outcome for v in result.versions] == ["skipped", "copied"]
    assert result.bytes_sent == 100 and result.blobs_copied == 10 and result.verified


async def test_non_retryable_blob_failure_fails_the_transport(ts_env: WorkflowEnvironment) -> None:
    fakes = Fakes(fail_blob=f"sha256:{4:064x}")
    queue = f"ocm-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[ComponentTransportWorkflow],
        activities=fakes.activities(),
        workflow_runner=workflow_runner(),
    ):
        with pytest.raises(WorkflowFailureError) as info:
            await ts_env.client.execute_workflow(
                "ComponentTransportWorkflow", _input(2), id=queue, task_queue=queue, result_type=TransportResult
            )
    cause = info.value.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    assert isinstance(cause, ApplicationError) and cause.type == "DigestMismatch"
    assert "finalise" not in fakes.order  # nothing is signed or published after a bad blob


def test_input_json_maps_onto_the_model() -> None:
    """JSON typed into the UI/CLI: defaults filled, unknown fields and secrets-by-value rejected."""
    inp = TransportInput.model_validate_json(
        '{"source": {"url": "http://a/ocm"}, "target": {"url": "https://b/ocm", "password_ref": "env:P"},'
        ' "components": [{"name": "x/y", "version": "1.0.0"}]}'
    )
    assert inp.mode == "by-value" and inp.existing == "skip-identical" and inp.recursive
    with pytest.raises(ValueError, match="password"):
        TransportInput.model_validate_json(
            '{"source": {"url": "http://a"}, "target": {"url": "http://b", "password": "hunter2"},'
            ' "components": [{"name": "x/y", "version": "1"}]}'
        )
    with pytest.raises(ValueError, match="components"):
        TransportInput.model_validate_json(
            '{"source": {"url": "http://a"}, "target": {"url": "http://b"}, "components": []}'
        )
