"""Test helpers: probe activities with their step types, and a compact way to write definitions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from definitions import queues
from definitions.steptypes import REGISTRY, StepKind, StepType
from workers.worker import workflow_runner


class ProbeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = "default"
    sleep: float = 0.0
    fail_times: int = 0
    fail_message: str = "probe failure"
    non_retryable: bool = False
    #: Fail the first N calls for this key, across activity executions (a step retried by an operator
    #: starts a new execution whose attempt is 1 again).
    fail_calls: int = 0


class Probe:
    """Activities that record what happened to them, so tests can assert on real behaviour."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: dict[str, int] = {}
        self.cancelled: list[str] = []

    def activities(self) -> list[Any]:
        return [self.run]

    @activity.defn(name="test.probe")
    async def run(self, args: ProbeArgs) -> dict[str, Any]:
        self.calls[args.key] = self.calls.get(args.key, 0) + 1
        attempt = activity.info().attempt
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            remaining = args.sleep
            while remaining > 0:
                activity.heartbeat()
                await asyncio.sleep(min(0.2, remaining))
                remaining -= 0.2
            if attempt <= args.fail_times or self.calls[args.key] <= args.fail_calls:
                raise ApplicationError(f"{args.fail_message} (attempt {attempt})", type="ProbeFailure",
                                       non_retryable=args.non_retryable)
            return {"key": args.key, "attempt": attempt}
        except asyncio.CancelledError:
            self.cancelled.append(args.key)
            raise
        finally:
            self.in_flight -= 1


class ProbeResult(BaseModel):
    key: str
    attempt: int


def register_probe_step() -> None:
    if "test.probe" not in REGISTRY:
        REGISTRY.register(StepType(
            name="test.probe", kind=StepKind.ACTIVITY, target="test.probe", task_queue=queues.PIPELINE,
            args_model=ProbeArgs, outputs_model=ProbeResult, description="test probe",
            start_to_close=timedelta(minutes=5), heartbeat_timeout=timedelta(seconds=5), default_max_attempts=1,
        ))


def pausing_flaky(key: str) -> dict[str, Any]:
    """A probe step named ``flaky`` whose first call fails and pauses the run (onFailure: pause): the
    run a repair test (retry, skip, resume) starts from. ``key`` keeps the probe's calls apart."""
    return {"name": "flaky", "uses": "test.probe", "onFailure": "pause", "with": {"key": key, "fail_calls": 1}}


def sandboxed_worker(
    client: Client, task_queue: str, workflows: Sequence[type], activities: Sequence[Callable[..., Any]]
) -> Worker:
    """A bare Worker (the project's sandbox runner, no interceptors) for just these workflows and activities."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=workflow_runner(),
    )


def pipeline(steps: list[dict[str, Any]], *, name: str = "test", inputs: dict[str, Any] | None = None,
             outputs: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"steps": steps, **spec}
    if inputs:
        body["inputs"] = inputs
    if outputs:
        body["outputs"] = outputs
    return {"apiVersion": "apeiro.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": name}, "spec": body}


class JoinArgs(BaseModel):
    """Args of a lifecycle whose workflow id comes from its input (like one provision per server)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    value: int = 0

    def workflow_id(self) -> str:
        return self.id


def register_join_step() -> None:
    if "test.join" not in REGISTRY:
        REGISTRY.register(StepType(
            name="test.join", kind=StepKind.WORKFLOW, target="JoinTargetWorkflow", task_queue=queues.PIPELINE,
            args_model=JoinArgs, outputs_model=None, description="test lifecycle with its own id",
            default_max_attempts=1,
        ))


def poll_until(fetch: Callable[[], Any], check: Callable[[Any], bool], timeout: float, interval: float) -> Any:
    """Calls ``fetch`` every ``interval`` seconds until ``check`` accepts its value or ``timeout`` has
    passed; returns the last value either way, so the caller's assert shows what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def json_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a parsed JSON tree, parents before their children (for searching exported
    histories without knowing their layout)."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from json_objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from json_objects(v)
