from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from definitions import queues
from landscape.landscape import Landscape
from tests.support import Probe, pipeline, register_probe_step
from tests.workflow.conftest import SUB_PIPELINE, Engine
from workers.worker import build_workers

REPO = Path(__file__).resolve().parents[2]

SLOW_SUB = pipeline([{"name": "hold", "uses": "core.echo", "with": {"sleep": "60s"}}], name="sub-slow")


@pytest.fixture(scope="session")
def definitions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("definitions")
    (d / "sub.yaml").write_text(json.dumps(SUB_PIPELINE))
    (d / "slow.yaml").write_text(json.dumps(SLOW_SUB))
    return d


@pytest.fixture
async def dev_engine(dev_client: Client, definitions_dir: Path,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Engine]:
    monkeypatch.setenv("APEIRO_DEFINITIONS", str(definitions_dir))
    register_probe_step()
    probe = Probe()
    workers = build_workers(dev_client, [queues.PIPELINE], extra_activities={queues.PIPELINE: probe.activities()})
    async with workers[0]:
        yield Engine(dev_client, probe)


def cli_env(landscape: Landscape, **extra: str) -> dict[str, str]:
    return {**os.environ, **landscape.env(), "PYTHONPATH": str(REPO), **extra}


def apeiro(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def worker_process(dev_landscape: Landscape, definitions_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`apeiro worker` as a real process, the way operators run it."""
    env = cli_env(dev_landscape, APEIRO_DEFINITIONS=str(definitions_dir))
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--queues", "pipeline"], env=env,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "worker exited"
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
