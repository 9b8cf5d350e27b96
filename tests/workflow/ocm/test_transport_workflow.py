"""ComponentTransportWorkflow's orchestration with stand-in activities (time-skipping server)."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from definitions.ocm import SigningSpec, TransportInput
from tests.workflow.ocm.overlap_fakes import Fakes, start_transport, transport_input, transport_worker

pytestmark = pytest.mark.workflow


SIGN = SigningSpec(name="site", private_key_ref="env:KEY")


async def test_bounded_parallel_copies_then_finalise(ts_env: WorkflowEnvironment) -> None:
    fakes = Fakes()
    async with transport_worker(ts_env, fakes.activities()) as queue:
        result = await (await start_transport(ts_env, queue, transport_input(3, SIGN))).result()
    assert fakes.peak == 3  # bounded by parallel_blobs, and actually parallel
    assert fakes.order[-1] == "finalise" and fakes.order.count("copy") == 10
    assert [v.outcome for v in result.versions] == ["skipped", "copied"]
    assert result.bytes_sent == 100 and result.blobs_copied == 10 and result.verified


async def test_non_retryable_blob_failure_fails_the_transport(ts_env: WorkflowEnvironment) -> None:
    fakes = Fakes(fail_blob=f"sha256:{4:064x}")
    async with transport_worker(ts_env, fakes.activities()) as queue:
        with pytest.raises(WorkflowFailureError) as info:
            await (await start_transport(ts_env, queue, transport_input(2, SIGN))).result()
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
