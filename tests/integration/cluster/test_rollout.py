"""Waves (`fleet.rollout`) against the simulated garden: canary then the rest behind an approval gate,
the promotion's prometheus, httpProbe and timeWindow gates between waves (with "why pending"), a
failing gate and a rejection stopping the rollout, a failure budget that stops the rollout with later
waves untouched, a selector matching nothing, a target deleted mid-rollout, abort."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class Peer:
    """A Prometheus HTTP API and a health endpoint in one small server: ``error_ratio`` is what
    ``/api/v1/query`` answers, ``/healthz`` says ``{"status": health}``."""

    def __init__(self) -> None:
        self.error_ratio = 0.01
        self.health = "ok"
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/api/v1/query"):
                    body = {"status": "success", "data": {"resultType": "vector",
                                                          "result": [{"metric": {}, "value": [0, str(peer.error_ratio)]}]}}
                elif self.path == "/healthz":
                    body = {"status": peer.health}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    thread = threading.Thread(target=p.server.serve_forever, daemon=True)
    thread.start()
    yield p
    p.server.shutdown()
    p.server.server_close()


def metric_gates(peer: Peer, **prometheus: Any) -> dict[str, Any]:
    """The promotion's measured gates between waves, against ``peer``."""
    return {
        "gates": [
            {"type": "soak", "duration": "2s"},
            {"type": "prometheus", "name": "error-rate", "query": "sum(rate(errors_total[1m]))",
             "successCondition": "result < 0.05", "interval": "1s", "count": 2, **prometheus},
            {"type": "httpProbe", "url": f"{peer.url}/healthz", "condition": 'body.status == "ok"', "interval": "1s"},
            {"type": "timeWindow", "calendar": "always"},
        ],
        "calendars": {"always": {"deny": [{"from": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}]}},
        "defaults": {"prometheus": peer.url, "errorBackoff": "1s"},
    }


async def test_promotion_gates_between_waves_say_why_pending(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, peer: Peer
) -> None:
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 3)
    inp = rollout_input(garden_api, tag, "cluster.hibernate", {"enabled": True}, waves=[1, "100%"],
                        maxInFlight=2, **metric_gates(peer))
    h = await start(dev_client, gardener_queue, inp)
    st = await status_until(h, lambda s: bool(s.waves) and s.waves[1].state == "gate" and "soaking" in s.waves[1].pending)
    assert st.waves[0].targets[0].state == "succeeded" and st.waves[1].pending.startswith("soak: soaking 2s until")
    assert [g.name for g in st.waves[1].gates] == ["soak", "error-rate", "httpProbe", "timeWindow"]
    assert all(t.state == "pending" for t in st.waves[1].targets)
    res: RolloutResult = await h.result()
    assert res.state == "done" and res.succeeded == names
    gates = {g.name: g for g in res.waves[1].gates}
    assert all(g.outcome == "Passed" for g in gates.values()), gates
    assert [m.value for m in gates["error-rate"].measurements] == [0.01, 0.01]
    assert gates["httpProbe"].reason == "1 consecutive successful probes"
    assert "allows this instant" in gates["timeWindow"].reason


async def test_failing_gate_stops_the_rollout_later_waves_untouched(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, peer: Peer
) -> None:
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 3)
    peer.error_ratio = 0.3  # the canary made things worse
    inp = rollout_input(garden_api, tag, "cluster.hibernate", {"enabled": True}, waves=[1, "100%"],
                        **metric_gates(peer))
    res: RolloutResult = await (await start(dev_client, gardener_queue, inp)).result()
    assert res.state == "stopped" and res.succeeded == [names[0]] and res.untouched == names[1:]
    assert "gate error-rate before wave 1 Failed: `result < 0.05` false with result=0.3" in res.message
    assert "later waves untouched" in res.message and res.waves[1].state == "stopped"
    assert [g.outcome for g in res.waves[1].gates][:2] == ["Passed", "Failed"]
    assert res.waves[1].gates[2].state == "Pending"  # the gates after the failing one never ran
    assert not (shoot(garden_api, names[1])["spec"].get("hibernation") or {}).get("enabled")


async def test_closed_time_window_says_why_then_times_out(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 2)
    now = datetime.now(UTC)
    closed = {"deny": [{"from": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(days=1)).isoformat(),
                        "note": "change freeze"}]}
    inp = rollout_input(garden_api, tag, "cluster.hibernate", {"enabled": True}, waves=[1, "100%"],
                        calendars={"closed": closed},
                        gates=[{"type": "timeWindow", "calendar": "closed", "timeout": "4s"}])
    h = await start(dev_client, gardener_queue, inp)
    st = await status_until(h, lambda s: bool(s.waves) and "next allowed" in s.waves[1].pending)
    assert st.waves[1].pending.startswith("timeWindow: calendar 'closed': ") and "change freeze" in st.waves[1].pending
    res: RolloutResult = await h.result()
    assert res.state == "stopped" and res.untouched == names[1:]
    assert "gate timeWindow before wave 1 TimedOut: no result within 4s" in res.message
    # A calendar that allows nothing ever: the check cannot run (Error, no retries left): stopped too.
    inp = rollout_input(garden_api, tag, "cluster.hibernate", {"enabled": True}, waves=[1, "100%"],
                        calendars={"never": {"allow": [{"days": ["MO"], "until": "2020-01-01T00:00:00Z"}]}},
                        defaults={"errorRetries": 0}, gates=[{"type": "timeWindow", "calendar": "never"}])
    res = await (await start(dev_client, gardener_queue, inp)).result()
    assert res.state == "stopped" and "gate timeWindow before wave 1 Error: the check could not run" in res.message
    assert "allows no instant" in res.message


async def test_rejected_wave_stops_the_rollout(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 2)
    inp = rollout_input(garden_api, tag, "cluster.hibernate", {"enabled": True}, waves=[1, "100%"],
                        gates=[{"type": "approval", "approvers": ["bob", "carol"], "quorum": 2}])
    h = await start(dev_client, gardener_queue, inp)
    st = await status_until(h, lambda s: s.waiting_approvals == ["1/approval"])
    assert "waiting for approval (2 needed, from bob, carol): approve the next wave" in st.waves[1].pending
    await h.execute_update("approve_wave", WaveApproval(wave=1, approver="bob"))
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await h.execute_update("approve_wave", WaveApproval(wave=1, approver="bob"))
    assert "already voted" in str(twice.value.cause)
    await h.execute_update("approve_wave", WaveApproval(wave=1, approver="carol", approve=False, comment="too risky"))
    res: RolloutResult = await h.result()
    assert res.state == "stopped" and res.untouched == names[1:]
    assert "gate approval before wave 1 Failed: rejected by carol: too risky" in res.message


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
    st = await status_until(h, lambda s: s.waiting_approvals == ["1/approval"])
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
    assert res.waves[1].gate == "approval: Passed: approved by bob"
    assert [(v.approver, v.comment) for v in res.waves[1].gates[1].votes] == [("bob", "canary fine")]


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
