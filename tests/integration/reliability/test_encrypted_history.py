"""Payload encryption end to end on the dev server: the stored history holds only ciphertext, a
rotated key still reads old runs, and the codec server lets the real `temporal` CLI read payloads."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from definitions import queues
from landscape.process import free_port
from landscape.temporal import TemporalDevServer, dev_server_path
from tests.integration.reliability.conftest import REPO, child_env
from tests.support import json_objects, pipeline
from workers.cli.pipeline import start_pipeline
from workers.config import data_converter
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability")]

K1, K2 = os.urandom(32).hex(), os.urandom(32).hex()
SECRET_INPUT = f"plaintext-marker-{uuid.uuid4().hex}"


def export_history(server: TemporalDevServer, workflow_id: str, *extra: str) -> str:
    """The history as `temporal workflow show -o json` exports it (what anyone with API access sees)."""
    out = subprocess.run(
        [
            str(dev_server_path()),
            "workflow",
            "show",
            "-w",
            workflow_id,
            "-o",
            "json",
            "--address",
            server.address,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def payload_texts(exported: str) -> str:
    """Every payload's data, base64-decoded, joined: what a reader of the export can see."""
    return "\n".join(
        base64.b64decode(node["data"]).decode(errors="replace")
        for node in json_objects(json.loads(exported))
        if isinstance(node.get("data"), str) and "metadata" in node
    )


async def run_echo(client: Client, value: str) -> str:
    data = pipeline(
        [{"name": "echo", "uses": "core.echo", "with": {"values": {"v": "${{ inputs.value }}"}}}],
        name="enc-test",
        inputs={"value": {"type": "string"}},
        outputs={"v": "steps.echo.outputs.v"},
    )
    workers = build_workers(client, [queues.PIPELINE])
    async with workers[0]:
        handle = await start_pipeline(client, data, {"value": value})
        result = await handle.result()
    assert result["outputs"] == {"v": value}
    return handle.id


async def test_history_holds_no_plaintext_and_rotation_reads_old_runs(
    own_temporal: TemporalDevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APEIRO_TEST_K1", K1)
    monkeypatch.setenv("APEIRO_TEST_K2", K2)
    monkeypatch.setenv("APEIRO_PAYLOAD_KEYS", "k1=env:APEIRO_TEST_K1")
    client = await Client.connect(own_temporal.address, data_converter=data_converter())
    old_id = await run_echo(client, SECRET_INPUT)

    raw = export_history(own_temporal, old_id)
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED" in raw and "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" in raw
    assert SECRET_INPUT not in raw and SECRET_INPUT not in payload_texts(raw)
    assert "YmluYXJ5L2VuY3J5cHRlZA" in raw  # base64 of "binary/encrypted"

    # Rotate: k2 encrypts new payloads, k1 stays listed for old histories.
    monkeypatch.setenv("APEIRO_PAYLOAD_KEYS", "k2=env:APEIRO_TEST_K2,k1=env:APEIRO_TEST_K1")
    monkeypatch.setenv("APEIRO_PAYLOAD_KEY_ID", "k2")
    rotated = await Client.connect(own_temporal.address, data_converter=data_converter())
    assert (await rotated.get_workflow_handle(old_id).result())["outputs"] == {"v": SECRET_INPUT}
    new_id = await run_echo(rotated, SECRET_INPUT + "-2")
    assert SECRET_INPUT not in payload_texts(export_history(own_temporal, new_id))

    # A process that only knows the old key cannot read the new run, and says which key is missing.
    monkeypatch.setenv("APEIRO_PAYLOAD_KEYS", "k1=env:APEIRO_TEST_K1")
    monkeypatch.delenv("APEIRO_PAYLOAD_KEY_ID")
    stale = await Client.connect(own_temporal.address, data_converter=data_converter())
    with pytest.raises(Exception, match="k2"):
        await stale.get_workflow_handle(new_id).result()


def test_codec_server_lets_the_temporal_cli_read_payloads(
    own_temporal: TemporalDevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APEIRO_TEST_K1", K1)
    monkeypatch.setenv("APEIRO_PAYLOAD_KEYS", "k1=env:APEIRO_TEST_K1")
    marker = SECRET_INPUT + "-cli"

    async def go() -> str:
        client = await Client.connect(own_temporal.address, data_converter=data_converter())
        return await run_echo(client, marker)

    wf = asyncio.run(go())
    assert marker not in payload_texts(export_history(own_temporal, wf))

    port = free_port()
    env = child_env(own_temporal, APEIRO_TEST_K1=K1, APEIRO_PAYLOAD_KEYS="k1=env:APEIRO_TEST_K1", CODEC_TOKEN="tok-123")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "codec", "serve", "--port", str(port), "--token-ref", "env:CODEC_TOKEN"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        decoded = export_history(own_temporal, wf, "--codec-endpoint", endpoint, "--codec-auth", "Bearer tok-123")
        assert marker in payload_texts(decoded)
        # Wrong token: the codec server answers 401 and the CLI shows no plaintext.
        denied = subprocess.run(
            [
                str(dev_server_path()),
                "workflow",
                "show",
                "-w",
                wf,
                "-o",
                "json",
                "--address",
                own_temporal.address,
                "--codec-endpoint",
                endpoint,
                "--codec-auth",
                "Bearer nope",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert marker not in denied.stdout + denied.stderr
        assert denied.returncode != 0 or marker not in payload_texts(denied.stdout)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


SCHEDULES = """
apiVersion: apeiro.dev/v1alpha1
kind: ScheduleSet
schedules:
  - id: enc-nightly
    pipeline: hook-echo
    inputs: {message: "%s"}
    cron: ["30 2 * * *"]
"""


async def test_schedules_apply_idempotently_with_encryption(
    own_temporal: TemporalDevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schedule sync reads its change-detection hash back from the action memo, which the codec
    encrypts too; a second apply must still see 'unchanged' (and the inputs stay ciphertext)."""
    from definitions.schedules import load_schedule_set
    from tests.triggers_support import write_definitions
    from triggers.schedules import apply_plan, plan_apply

    monkeypatch.setenv("APEIRO_TEST_K1", K1)
    monkeypatch.setenv("APEIRO_PAYLOAD_KEYS", "k1=env:APEIRO_TEST_K1")
    monkeypatch.setenv("APEIRO_DEFINITIONS", str(write_definitions(tmp_path)))
    marker = SECRET_INPUT + "-schedule"
    (tmp_path / "s.yaml").write_text(SCHEDULES % marker)
    client = await Client.connect(own_temporal.address, data_converter=data_converter())
    schedules = load_schedule_set(tmp_path / "s.yaml")
    await apply_plan(client, await plan_apply(client, schedules, prune=False))
    again = await plan_apply(client, schedules, prune=False)
    assert again.unchanged == ["enc-nightly"] and not again.update and not again.create
    plain = await Client.connect(own_temporal.address)  # no keys: what the server stores
    desc = await plain.get_schedule_handle("enc-nightly").describe()
    assert marker not in str(desc.raw_description)


def test_codec_server_over_tls(tmp_path: Path) -> None:
    """`apeiro codec serve --tls-cert/--tls-key`: HTTPS only, certificate checked by the client."""
    from landscape.registry import write_tls_material

    ca, cert, key = write_tls_material(tmp_path)
    trust = ssl.create_default_context(cafile=str(ca))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "APEIRO_TEST_K1": K1,
        "APEIRO_PAYLOAD_KEYS": "k1=env:APEIRO_TEST_K1",
        "CODEC_TOKEN": "tok-tls",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "codec",
            "serve",
            "--port",
            str(port),
            "--token-ref",
            "env:CODEC_TOKEN",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"https://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz", verify=trust, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {
            "payloads": [
                {
                    "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                    "data": base64.b64encode(b'"over tls"').decode(),
                }
            ]
        }
        enc = httpx.post(f"{url}/encode", json=body, headers={"Authorization": "Bearer tok-tls"}, verify=trust)
        assert enc.status_code == 200
        dec = httpx.post(f"{url}/decode", json=enc.json(), headers={"Authorization": "Bearer tok-tls"}, verify=trust)
        assert base64.b64decode(dec.json()["payloads"][0]["data"]) == b'"over tls"'
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"http://127.0.0.1:{port}/decode", json=enc.json(), timeout=5)  # no plain HTTP
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=5)  # an unknown CA is refused by the client
    finally:
        proc.terminate()
        proc.wait(timeout=15)
