"""Every `apeiro` service of docker-compose.yml, run as a process with the compose file's own command
and environment, becomes healthy.

No Docker engine runs here, so the compose file is read the way `docker compose` reads it (anchors and
merge keys, `${VAR:-default}` / `${VAR:?message}` from a test `.env`), and what a container would see
is mapped onto this host: the `temporal` service name onto a dev server of this test's own, container
paths of bind mounts onto the repository, named volumes onto temporary directories, and container
ports (`--port`, `APEIRO_METRICS_PORT`) onto free local ports. Then each service must do its job:
workers poll their queue and serve metrics, the gateway answers /readyz, the codec server decodes for
the configured token and allows the UI's origin, schedule-apply finishes with 0; logs are JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client

from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.temporal import TemporalDevServer
from tests.integration.pollers import stop, wait_polling
from workers.codec import EncryptionCodec, generate_key, parse_key_material
from workers.queues import known_queues

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("compose")]

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APEIRO = sorted(n for n, s in SERVICES.items() if str(s.get("image", "")).startswith("apeiro-orchestrator"))
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}")


def dot_env() -> dict[str, str]:
    """What an operator puts in .env (the required values; the rest keeps the compose defaults)."""
    return {
        "POSTGRES_PASSWORD": "unused-here",
        "APEIRO_PAYLOAD_KEY_1": generate_key(),
        "APEIRO_CODEC_TOKEN": secrets.token_hex(16),
        **{
            f"APEIRO_HOOK_{k}": secrets.token_hex(16)
            for k in ("REGISTRY_TOKEN", "ALERTMANAGER_TOKEN", "RELEASES_KEY", "BOOT_KEY", "PIPELINES_KEY")
        },
    }


def interpolate(value: str, env: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == "?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg or ""

    return VAR.sub(one, value)


class HostMap:
    """Container view -> this host: paths of mounts, ports, the `temporal` service."""

    def __init__(self, service: dict[str, Any], temporal: str, scratch: Path) -> None:
        self.paths: dict[str, str] = {"/app/": f"{REPO}/"}
        for mount in service.get("volumes", []):
            src, dst = mount.split(":")[:2]
            if src.startswith("./"):
                self.paths[dst] = str(REPO / src)
            else:  # a named volume
                volume = scratch / src
                volume.mkdir(parents=True, exist_ok=True)
                self.paths[dst] = str(volume)
        self.temporal = temporal
        self.ports: dict[str, str] = {}

    def port(self, container_port: str) -> str:
        return self.ports.setdefault(container_port, str(free_port()))

    def value(self, value: str) -> str:
        value = value.replace("temporal:7233", self.temporal)
        for dst, src in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            if value.startswith(dst):
                return src + value[len(dst) :]
        return value


def service_process(
    name: str, env_file: dict[str, str], temporal: str, scratch: Path
) -> tuple[list[str], dict[str, str], HostMap]:
    service = SERVICES[name]
    hosts = HostMap(service, temporal, scratch)
    env = {k: hosts.value(interpolate(str(v), env_file)) for k, v in (service.get("environment") or {}).items()}
    if "APEIRO_METRICS_PORT" in env:
        env["APEIRO_METRICS_PORT"] = hosts.port(env["APEIRO_METRICS_PORT"])
        env["APEIRO_METRICS_HOST"] = "127.0.0.1"
    args = [hosts.value(interpolate(str(a), env_file)) for a in service["command"]]
    for flag in ("--port",):
        if flag in args:
            i = args.index(flag) + 1
            args[i] = hosts.port(args[i])
    if "--host" in args:
        args[args.index("--host") + 1] = "127.0.0.1"
    return args, env, hosts


@pytest.fixture(scope="module")
def own_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dev server of this module's own: schedule-apply creates schedules, which others must not see."""
    landscape = Landscape([TemporalDevServer(headless=True)], state_dir=tmp_path_factory.mktemp("compose-temporal"))
    with landscape.running():
        yield landscape.part("temporal").endpoints["address"]


class Launched:
    def __init__(self, proc: subprocess.Popen[bytes], hosts: HostMap, log: Path, env: dict[str, str]) -> None:
        self.proc, self.hosts, self.log, self.env = proc, hosts, log, env


@pytest.fixture
def launched(own_temporal: str, tmp_path: Path) -> Iterator[dict[str, Launched]]:
    env_file = dot_env()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "APEIRO_"))}
    procs: dict[str, Launched] = {}
    try:
        for name in APEIRO:
            args, env, hosts = service_process(name, env_file, own_temporal, tmp_path / "volumes")
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "workers.cli", *args],
                    cwd=tmp_path,
                    env={**base, **env, "PYTHONPATH": str(REPO)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs[name] = Launched(proc, hosts, log, env)
        yield procs
    finally:
        for item in procs.values():
            if item.proc.poll() is None:
                stop(item.proc)


async def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Any = None
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{url}: process exited {proc.returncode}: {log.read_text()[-3000:]}"
            try:
                last = await http.get(url)
                if last.status_code == 200:
                    return last
            except httpx.TransportError as exc:
                last = exc
            await asyncio.sleep(0.3)
    raise AssertionError(f"{url} not healthy after {timeout} s: {last}; log: {log.read_text()[-2000:]}")


def json_lines(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_the_compose_file_runs_a_service_for_every_queue() -> None:
    workers = {SERVICES[n]["command"][2] for n in APEIRO if SERVICES[n]["command"][0] == "worker"}
    assert workers == set(known_queues())


@pytest.mark.timeout(600)
async def test_every_apeiro_service_becomes_healthy(launched: dict[str, Launched], own_temporal: str) -> None:
    client = await Client.connect(own_temporal)
    checked = set()
    for name, item in launched.items():
        proc, hosts, log = item.proc, item.hosts, item.log
        command = SERVICES[name]["command"]
        if command[0] == "worker":
            await wait_polling(client, command[2], proc)
            metrics = await wait_http(f"http://127.0.0.1:{hosts.ports['9464']}/metrics", proc, log)
            assert "temporal_" in metrics.text, f"{name}: no Temporal SDK metrics for Prometheus"
            checked.add(name)
        elif command[:2] == ["webhook", "serve"]:
            port = hosts.ports[command[command.index("--port") + 1]]
            ready = await wait_http(f"http://127.0.0.1:{port}/readyz", proc, log)
            assert ready.json() == {"status": "ready"}
            metrics = await wait_http(f"http://127.0.0.1:{port}/metrics", proc, log)
            assert "apeiro_webhook" in metrics.text
            checked.add(name)
        elif command[:2] == ["codec", "serve"]:
            await check_codec(item)
            checked.add(name)
        elif command[:2] == ["schedule", "apply"]:
            code = proc.wait(timeout=120)
            assert code == 0, f"{name} exited {code}: {log.read_text()[-3000:]}"
            checked.add(name)
    assert checked == set(APEIRO), f"no health check for {set(APEIRO) - checked}"
    for name, item in launched.items():
        if item.proc.poll() is None:
            # uvicorn re-raises SIGTERM after its graceful shutdown (exit -15); workers return 0.
            code = stop(item.proc)
            assert code in (0, -signal.SIGTERM), f"{name} did not stop cleanly ({code}): {item.log.read_text()[-2000:]}"
        if SERVICES[name].get("restart") == "on-failure":
            continue  # a one-shot command prints its result, it does not log
        log = item.log
        lines = json_lines(log)
        assert lines and all({"time", "level", "message"} <= set(line) for line in lines), (
            f"{name}: APEIRO_LOG_FORMAT=json but its log is not JSON lines: {log.read_text()[:1000]}"
        )


async def check_codec(item: Launched) -> None:
    """The UI's origin may call it; it decodes what a worker encrypted, for the configured token only."""
    url = f"http://127.0.0.1:{item.hosts.ports['8888']}"
    await wait_http(f"{url}/healthz", item.proc, item.log)
    ui = SERVICES["temporal-ui"]["environment"]
    origin = interpolate(str(ui["TEMPORAL_CORS_ORIGINS"]), {})
    published = interpolate(str(SERVICES["codec"]["ports"][0]), {}).split(":")
    assert interpolate(str(ui["TEMPORAL_CODEC_ENDPOINT"]), {}) == f"http://localhost:{published[1]}"
    # Encrypt a payload as the workers do, with the key the compose file gives every process.
    assert item.env["APEIRO_PAYLOAD_KEYS"] == "k1=env:APEIRO_PAYLOAD_KEY_1"
    codec = EncryptionCodec({"k1": parse_key_material(item.env["APEIRO_PAYLOAD_KEY_1"], "k1")}, "k1")
    encrypted = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'{"hello": "ui"}')])
    assert encrypted[0].data != b'{"hello": "ui"}'
    body = json_format.MessageToJson(Payloads(payloads=encrypted))
    headers = {"Content-Type": "application/json", "Origin": origin}
    token = item.env["APEIRO_CODEC_TOKEN"]
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        preflight = await http.options(
            "/decode",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.headers.get("access-control-allow-origin") == origin, preflight.headers
        assert (await http.post("/decode", content=body, headers=headers)).status_code == 401
        resp = await http.post("/decode", content=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert json_format.ParseDict(resp.json(), Payloads()).payloads[0].data == b'{"hello": "ui"}'
