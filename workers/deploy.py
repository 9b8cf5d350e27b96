"""Shift traffic between worker builds and see which runs still need an old one.

Thin wrappers over the Worker Deployment API (the same calls `temporal worker deployment
set-current-version` / `describe` make), so the CLI and the tests share one code path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from pydantic import BaseModel
from temporalio.api.enums.v1 import VersioningBehavior as ProtoBehavior
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)
#: Answers to a read that mean "ask again", and the pauses before asking again.
TRANSIENT_READ_ERRORS = (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
READ_RETRY_DELAYS_S = (0.2, 0.5, 1.0)


class DeployError(Exception):
    """The server refused or does not know the deployment or version; the message says what to do."""


class VersionSummary(BaseModel):
    build_id: str
    status: str
    drainage: str = ""


class RunOnVersion(BaseModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    build_id: str
    behavior: str


class DeploymentView(BaseModel):
    name: str
    current_build_id: str | None
    versions: list[VersionSummary]
    #: Running workflows by the build they run on (pinned runs stay there until they finish).
    runs: list[RunOnVersion] = []

    def runs_by_build(self) -> dict[str, int]:
        return dict(Counter(r.build_id for r in self.runs))


def _enum_name(value: int, prefix: str, enum: object) -> str:
    name: str = enum.Name(value)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower()


async def describe(client: Client, deployment: str, *, with_runs: bool = True) -> DeploymentView:
    """The deployment's versions, its current one and (optionally) which running workflows use which."""
    from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus

    request = DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
    try:
        for delay in (*READ_RETRY_DELAYS_S, None):
            try:
                resp = await client.workflow_service.describe_worker_deployment(request)
                break
            except RPCError as exc:
                # Right after a change of the current version the server may cancel a describe that
                # raced the deployment's own update (seen: "operation was canceled"); a read is safe
                # to ask again.
                if delay is None or exc.status not in TRANSIENT_READ_ERRORS:
                    raise
                await asyncio.sleep(delay)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise DeployError(
                f"no worker deployment {deployment!r} on the server: start a worker with "
                f"--deployment-name {deployment} first"
            ) from None
        raise _explain(exc, deployment) from None
    info = resp.worker_deployment_info
    current = info.routing_config.current_deployment_version.build_id or None
    versions = [
        VersionSummary(
            build_id=s.deployment_version.build_id,
            status=_enum_name(s.status, "WORKER_DEPLOYMENT_VERSION_STATUS_", WorkerDeploymentVersionStatus),
            drainage=_enum_name(s.drainage_status, "VERSION_DRAINAGE_STATUS_", VersionDrainageStatus),
        )
        for s in info.version_summaries
    ]
    view = DeploymentView(name=deployment, current_build_id=current, versions=versions)
    if with_runs:
        view.runs = await runs_on(client, deployment)
    return view


async def runs_on(client: Client, deployment: str) -> list[RunOnVersion]:
    """Running workflows served by any version of ``deployment``, with their build and behaviour.

    Visibility finds them (the ``TemporalWorkerDeployment`` search attribute); their version and
    behaviour come from describing each, since list results carry no versioning info.
    """
    runs = []
    query = f"ExecutionStatus = 'Running' AND TemporalWorkerDeployment = '{deployment}'"
    async for wf in client.list_workflows(query):
        desc = await client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()
        vi = desc.raw_description.workflow_execution_info.versioning_info
        runs.append(
            RunOnVersion(
                workflow_id=wf.id,
                run_id=wf.run_id,
                workflow_type=wf.workflow_type,
                build_id=vi.deployment_version.build_id,
                behavior=_enum_name(vi.behavior, "VERSIONING_BEHAVIOR_", ProtoBehavior),
            )
        )
    return runs


async def set_current(client: Client, deployment: str, build_id: str, *, identity: str = "apeiro deploy") -> str | None:
    """Make ``build_id`` the version new runs (and AUTO_UPGRADE runs) go to; returns the previous one.

    The version must have polled the server (a worker with that build id started on every task
    queue); otherwise the server refuses and nothing changes.
    """
    try:
        resp = await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace, deployment_name=deployment, build_id=build_id, identity=identity
            )
        )
    except RPCError as exc:
        raise _explain(exc, deployment, build_id) from None
    previous: str | None = resp.previous_deployment_version.build_id or None
    return previous


def _explain(exc: RPCError, deployment: str, build_id: str | None = None) -> DeployError:
    what = f"build {build_id!r} of deployment {deployment!r}" if build_id else f"deployment {deployment!r}"
    if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.INVALID_ARGUMENT):
        return DeployError(
            f"the server refused {what}: {exc.message}. Start workers with "
            f"--deployment-name {deployment} --build-id {build_id or 'BUILD'} on every task queue "
            "first, then retry"
        )
    if exc.status == RPCStatusCode.UNIMPLEMENTED:
        return DeployError(
            "this Temporal server does not support Worker Deployments (server 1.28+ with "
            "worker versioning enabled); run workers without --build-id"
        )
    return DeployError(f"{what}: {exc.message}")


async def check_deployment(client: Client, version: WorkerDeploymentVersion) -> str | None:
    """Before a versioned worker starts: a problem to stop on (exit 2), or ``None``.

    A build the server has not seen yet is normal (the first poll registers it) and only logged
    with the next step; a server without Worker Deployments is a misconfiguration.
    """
    try:
        view = await describe(client, version.deployment_name, with_runs=False)
    except DeployError as exc:
        if "no worker deployment" in str(exc):
            log.info(
                "deployment %s is new: build %s registers with its first poll; make it current with "
                "`apeiro deploy set-current %s %s`",
                version.deployment_name,
                version.build_id,
                version.deployment_name,
                version.build_id,
            )
            return None
        return f"cannot run as {version.to_canonical_string()}: {exc}"
    known = {v.build_id for v in view.versions}
    if version.build_id not in known:
        log.warning(
            "build %s is new to deployment %s (current: %s): it serves no new runs until "
            "`apeiro deploy set-current %s %s`",
            version.build_id,
            version.deployment_name,
            view.current_build_id or "none",
            version.deployment_name,
            version.build_id,
        )
    elif version.build_id != view.current_build_id:
        log.warning(
            "build %s of deployment %s is not the current one (%s): it serves only runs pinned to it",
            version.build_id,
            version.deployment_name,
            view.current_build_id or "none",
        )
    return None
