"""The image works: a clean virtual environment built with exactly the Dockerfile's install line, from
exactly the files the Dockerfile copies, runs `apeiro --help` and a worker for every task queue.

No Docker engine runs here, so the test does what `docker build` does that can go wrong for us: every
COPY source must exist, the one `RUN pip install` line (read from the Dockerfile, so the two cannot
drift) must resolve and install, and the installed product alone (no landscape, no test tools) must
start a worker for each queue of workers/queues.py that polls it on a Temporal dev server.
The install takes 1.5-3 minutes (pip from the local wheels; longer on a busy machine).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import Client

from landscape.landscape import Landscape
from tests.integration.pollers import stop, wait_polling
from workers.queues import known_queues

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("image")]

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY instruction."""
    out = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            words = shlex.split(line)[1:]
            assert not any(w.startswith("--") for w in words), f"COPY flags are not modelled here: {line}"
            out.append((words[:-1], words[-1]))
    return out


def dockerfile_install() -> list[str]:
    installs = [line for line in DOCKERFILE.splitlines() if line.startswith("RUN pip install")]
    assert len(installs) == 1, "the Dockerfile has one `RUN pip install` line"
    return shlex.split(installs[0].removeprefix("RUN "))


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of the test run: what the image's processes see."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_NO_CACHE_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("TEMPORAL_", "APEIRO_"))}
    return {**env, **extra}


def run_in_image(
    venv: Path, cwd: Path, program: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Runs one of the image venv's programs as the image would (clean environment), output captured."""
    return subprocess.run(
        [str(venv / "bin" / program), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the Dockerfile builds it, and a venv with its install line run there."""
    root = tmp_path_factory.mktemp("image")
    app = root / "app"
    app.mkdir()
    for sources, dest in dockerfile_copies():
        base = (app / dest).resolve()
        for src in sources:
            path = REPO / src
            assert path.exists(), f"Dockerfile copies {src}, which does not exist: docker build would fail"
            if path.is_dir():  # Docker copies a directory's contents into the destination
                shutil.copytree(path, base, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into_dir = dest.endswith("/") or len(sources) > 1
                base.mkdir(parents=True, exist_ok=True) if into_dir else base.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, base / path.name if into_dir else base)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean_env())
    argv = dockerfile_install()
    assert argv[:2] == ["pip", "install"], argv
    # Appended options change how, not what, pip installs: no .pyc compilation (halves the time here).
    done = run_in_image(venv, app, "pip", *argv[1:], "--quiet", "--no-compile", timeout=900)
    assert done.returncode == 0, f"`{' '.join(argv)}` failed:\n{done.stderr[-4000:]}"
    return venv


@pytest.mark.timeout(900)
def test_every_copied_path_exists_and_the_install_line_names_extras_of_pyproject() -> None:
    for sources, _ in dockerfile_copies():
        for src in sources:
            assert (REPO / src).exists(), src
    spec = dockerfile_install()[-1]
    assert re.fullmatch(r"\.\[[a-z,-]+\]", spec), spec


@pytest.mark.timeout(900)
def test_help_runs_and_the_landscape_is_not_installed(image_venv: Path, tmp_path: Path) -> None:
    done = run_in_image(image_venv, tmp_path, "apeiro", "--help")
    assert done.returncode == 0, done.stderr
    assert "worker" in done.stdout
    probe = run_in_image(image_venv, tmp_path, "python", "-c", "import landscape")
    assert probe.returncode != 0 and "No module named 'landscape'" in probe.stderr, (
        "the image must ship the product only, but `import landscape` works in it"
    )
    dev = run_in_image(image_venv, tmp_path, "apeiro", "dev", "status")
    assert dev.returncode == 2 and "landscape" in dev.stderr and "Traceback" not in dev.stderr, dev.stderr


@pytest.mark.timeout(900)
async def test_a_worker_for_every_queue_polls_it(
    image_venv: Path, dev_landscape: Landscape, dev_client: Client, tmp_path: Path
) -> None:
    env = clean_env(TEMPORAL_ADDRESS=dev_landscape.part("temporal").endpoints["address"])
    procs = {
        queue: subprocess.Popen(  # noqa: ASYNC220 (starting a process does not block)
            [str(image_venv / "bin" / "apeiro"), "worker", "--queues", queue],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for queue in known_queues()
    }
    try:
        for queue, proc in procs.items():
            await wait_polling(dev_client, queue, proc)
    finally:
        codes = {queue: stop(proc) for queue, proc in procs.items()}
    assert codes == dict.fromkeys(known_queues(), 0), codes
