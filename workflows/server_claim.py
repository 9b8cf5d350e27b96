"""Provisioning through IronCore's metal-operator (site ``backend: ironcore``): ``ServerClaimWorkflow``.

A site whose servers metal-operator owns is never driven through its BMCs. Instead the workflow
registers the server's BMC (``BMC`` + ``BMCSecret``) and waits for metal-operator to report the
``Server`` with the system's UUID Available (``server.register``, target ironcore), then claims that
server by name with the Garden Linux image and an ignition (``ironcore.claim_server``: a
``ServerClaim``, waited for until bound and powered on). It never writes a Server nor powers one.
Releasing is deleting the claim (step ``server.release``, activity ``ironcore.release_server``).
A workflow type of its own, so the Redfish provisioning's histories keep their command sequence.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows.step_activity import execute_step_activity

with workflow.unsafe.imports_passed_through():
    from definitions.server import (
        NON_RETRYABLE,
        ProvisionInput,
        ProvisionResult,
        RegisterInput,
        RegisterResult,
        ServerSummary,
    )
    from definitions.server_claims import ClaimRequest, ClaimResult
    from workflows.activity_options import HEARTBEAT_TIMEOUT

#: The API server may answer 409/429/5xx for a while; what a retry cannot fix fails at once.
API_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=6,
    non_retryable_error_types=list(NON_RETRYABLE),
)


def claim_name(site: str, identity: str) -> str:
    """Deterministic ServerClaim name (a retried activity finds its claim): ``<site>-<identity>``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{site}-{identity}".lower()).strip("-")
    return slug[:63].strip("-") or "server"


def default_ignition(hostname: str) -> str:
    """A minimal Ignition (spec 3.4) config: the host name, so the booted server knows who it is."""
    return (
        '{"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "/etc/hostname", "mode": 420, '
        f'"overwrite": true, "contents": {{"source": "data:,{hostname}"}}}}]}}}}'
    )


@workflow.defn
class ServerClaimWorkflow:
    """Provision one server of an ``ironcore`` site. Workflow id: ``server-claim-<identity>``.

    States (query ``status``): registering -> claiming -> done (or failed)."""

    def __init__(self) -> None:
        self._state = "starting"

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {"state": self._state}

    async def _act(self, name: str, arg: Any, result_type: type[Any], timeout: timedelta) -> Any:
        return await execute_step_activity(
            self._state, name, arg, result_type, start_to_close=timeout, heartbeat=HEARTBEAT_TIMEOUT,
            retry_policy=API_RETRY,
        )

    @workflow.run
    async def run(self, inp: ProvisionInput) -> ProvisionResult:
        site, server = inp.site, inp.server
        if site is None or not isinstance(server, ServerSummary):
            raise ApplicationError(
                "backend ironcore needs a discovery summary (the system UUID metal-operator reports) and its "
                "site: give `server` from server.discover's outputs and `site`",
                type="InvalidSiteDefinition",
                non_retryable=True,
            )
        problems = site.problems()
        if problems:
            raise ApplicationError(
                "invalid site definition: " + "; ".join(problems), type="InvalidSiteDefinition", non_retryable=True
            )
        opts = site.ironcore
        result = ProvisionResult(identity=server.identity, backend="ironcore")

        # 1. BMC + BMCSecret, then metal-operator's Server for this system, Available.
        self._state = "registering"
        registered: RegisterResult = await self._act(
            "server.register",
            RegisterInput(target="ironcore", servers=[server], site=site, discovery_timeout_s=opts.discovery_timeout_s),
            RegisterResult,
            timedelta(seconds=opts.discovery_timeout_s + 120),
        )
        if registered.failed or not registered.registered:
            failure = registered.failed[0] if registered.failed else None
            raise ApplicationError(
                f"step registering: {failure.message if failure else 'no registration came back'}",
                type=failure.error_type if failure else "ServerNotDiscovered",
                non_retryable=True,
            )
        server_name = registered.registered[0].object_id.removeprefix("servers/")
        result.steps_done.append("register-bmc")

        # 2. the claim: image, ignition, this server by name; bound and powered on by metal-operator.
        self._state = "claiming"
        name = claim_name(site.name, server.identity)
        claimed: ClaimResult = await self._act(
            "ironcore.claim_server",
            ClaimRequest(
                name=name,
                namespace=opts.namespace,
                image=opts.image,
                ignition=opts.ignition if opts.ignition is not None else default_ignition(name),
                server=server_name,
                power="On",
                bind_timeout_seconds=opts.bind_timeout_s,
                power_timeout_seconds=opts.power_timeout_s,
            ),
            ClaimResult,
            timedelta(seconds=opts.bind_timeout_s + opts.power_timeout_s + 120),
        )
        (result.steps_done if claimed.created else result.steps_skipped).append("claim")
        result.steps_done.append("power-on")
        result.server_name, result.claim, result.power_state = claimed.server, claimed.claim, claimed.power_state
        self._state = "done"
        return result
