"""`apeiro deploy describe` asks again when the server cancels a read (seen right after set-current)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentResponse
from temporalio.service import RPCError, RPCStatusCode

from workers import deploy


class FakeService:
    def __init__(self, answers: list[RPCError | None]) -> None:
        self.answers = answers
        self.calls = 0

    async def describe_worker_deployment(self, request: Any) -> DescribeWorkerDeploymentResponse:
        self.calls += 1
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        resp = DescribeWorkerDeploymentResponse()
        resp.worker_deployment_info.routing_config.current_deployment_version.build_id = "build-b"
        return resp


def client(service: FakeService) -> Any:
    return SimpleNamespace(namespace="default", workflow_service=service)


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy, "READ_RETRY_DELAYS_S", (0.0, 0.0, 0.0))


async def test_a_cancelled_read_is_asked_again() -> None:
    service = FakeService([RPCError("operation was canceled", RPCStatusCode.CANCELLED, b""), None])
    view = await deploy.describe(client(service), "apeiro-x", with_runs=False)
    assert view.current_build_id == "build-b"
    assert service.calls == 2


async def test_a_read_that_keeps_failing_ends_in_an_operator_error() -> None:
    service = FakeService([RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")] * 4)
    with pytest.raises(deploy.DeployError, match="deployment 'apeiro-x': unavailable"):
        await deploy.describe(client(service), "apeiro-x", with_runs=False)
    assert service.calls == 4  # the first try and one per pause


async def test_a_refusal_is_not_asked_again() -> None:
    service = FakeService([RPCError("no such deployment", RPCStatusCode.NOT_FOUND, b"")])
    with pytest.raises(deploy.DeployError, match="no worker deployment 'apeiro-x'"):
        await deploy.describe(client(service), "apeiro-x", with_runs=False)
    assert service.calls == 1
