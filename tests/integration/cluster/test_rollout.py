"""Waves (`fleet.rollout`) against the simulated garden: canary then the rest behind an approval gate,
a failure budget that stops the rollout with later waves untouched, a selector matching nothing, a
target deleted mid-rollout, abort."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from definitions.cluster import ClusterSpec
from definitions.rollout import AbortRequest, RolloutInput, RolloutResult, RolloutStatus, WaveApproval
from landscape.kubeapi.part import KubeApiServer
from tests.integration.cluster.test_cluster_workflows import NS, create, failure, garden, shoot, spec, uid

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("cluster")]


async def fleet(client: Client, queue: str, api: KubeApiServer, n: int) -> tuple[str, list[str]]:
    """``n`` ready shoots carrying a fresh label value; returns (label value, names)."""
    tag = uuid.uuid4().hex[:6]
    names = [uid("w") for _ in range(n)]
    for name in names:
        cluster: ClusterSpec = spec(name, labels={"fleet": tag})
        await create(client, queue, api, name, cluster=cluster)
    return tag, sorted(names)


def rollout_input(api: KubeApiServer, tag: str, operation: str, with_: dict[str, Any], **rollout: Any) -> RolloutInput:
    return RolloutInput.model_validate(
        {
            "operation": operation,
            "with": with_,
            "rollout": {"selector": {"namespace": NS, "matchLabels": {"fleet": tag}}, **rollout},
            "garden": garden(api).model_dump(),
        }
    )


async def start(client: Client, queue: str, inp: RolloutInput) -> Any:
    return await client.start_workflow(
        "FleetRolloutWorkflow", inp, id=f"rollout-{uuid.uuid4().hex[:6]}", task_queue=queue, result_type=RolloutResult
    )


async def status_until(h: Any, check: Any, timeout: float = 30.0) -> RolloutStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    st: RolloutStatus | None = None
    while True:
        try:
            st = await h.query("status", result_type=RolloutStatus)
            if check(st):
                return st
        except RPCError:  # not started yet
            pass
        assert asyncio.get_running_loop().time() < deadline, f"rollout status not reached in time: {st}"
        await asyncio.sleep(0.2)


async def test_canary_then_rest_after_approval(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 4)
    inp = rollout_input(
        garden_api,
        tag,
        "cluster.hibernate",
        {"enabled": True},
        waves=[1, "100%"],
        maxInFlight=2,
        gates=[{"type": "soak", "duration": "1s"}, {"type": "approval", "approvers": ["bob"]}],
    )
    h = await start(dev_client, gardener_queue, inp)
    st = await status_until(h, lambda s: s.waves and s.waves[1].state == "gate" and "approval" in s.waves[1].gate)
    assert [t.state for t in st.waves[0].targets] == ["succeeded"] and st.waves[0].targets[0].name == names[0]
    assert all(t.state == "pending" for t in st.waves[1].targets) and len(st.waves[1].targets) == 3
    assert shoot(garden_api, names[0])["status"]["hibernated"] is True
    assert not (shoot(garden_api, names[1])["spec"].get("hibernation") or {}).get("enabled")  # untouched
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await h.execute_update("approve_wave", WaveApproval(wave=1, approver="mallory"))
    assert "may not approve" in str(refused.value.cause)
    await h.execute_update("approve_wave", WaveApproval(wave=1, approver="bob", comment="canary fine"))
    res: RolloutResult = await h.result()
    assert res.state == "done" and res.succeeded == names and not res.failed
    assert res.waves[1].gate == "approved by bob: canary fine"


async def test_failure_budget_stops_later_waves_untouched(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 3)
    # Completing a rotation that never started: Gardener refuses it on every shoot.
    inp = rollout_input(garden_api, tag, "cluster.rotate-credentials", {"phase": "complete"}, waves=[1, "100%"])
    res: RolloutResult = await (await start(dev_client, gardener_queue, inp)).result()
    assert res.state == "stopped"
    assert list(res.failed) == [names[0]] and "is not 'Prepared'" in res.failed[names[0]]
    assert res.untouched == names[1:] and res.waves[1].state == "pending"


async def test_selector_matching_nothing_runs_nothing(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    inp = rollout_input(garden_api, "no-such-fleet", "cluster.hibernate", {"enabled": True})
    with pytest.raises(WorkflowFailureError) as info:
        await (await start(dev_client, gardener_queue, inp)).result()
    err = failure(info)
    assert err.type == "SelectorMatchesNothing" and "fleet=no-such-fleet" in err.message
    # Bad operation arguments are refused before start, with their path.
    with pytest.raises(ValidationError, match=r"with\.bogus"):
        rollout_input(garden_api, "x", "cluster.hibernate", {"bogus": 1})


async def test_deleted_target_skipped_and_abort(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 3)
    inp = rollout_input(
        garden_api,
        tag,
        "cluster.hibernate",
        {"enabled": True},
        waves=[1, 2, "100%"],
        gates=[{"type": "approval"}],
    )
    h = await start(dev_client, gardener_queue, inp)
    await status_until(h, lambda s: s.waves and s.waves[1].state == "gate")
    # names[1] disappears before its wave runs.
    base = f"{garden_api.url}/apis/core.gardener.cloud/v1beta1/namespaces/{NS}/shoots/{names[1]}"
    async with httpx.AsyncClient() as http:
        await http.patch(
            base,
            json={"metadata": {"annotations": {"confirmation.gardener.cloud/deletion": "true"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        await http.delete(base)
        for _ in range(100):
            if (await http.get(base)).status_code == 404:
                break
            await asyncio.sleep(0.2)
    await h.execute_update("approve_wave", WaveApproval(wave=1, approver="alice"))
    await status_until(h, lambda s: s.waves[2].state == "gate")
    await h.signal("abort", AbortRequest(by="alice", reason="enough for today"))
    res: RolloutResult = await h.result()
    assert res.state == "aborted"
    assert res.succeeded == [names[0]] and names[1] in res.skipped and res.untouched == [names[2]]
