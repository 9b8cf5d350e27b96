"""free_port hands out ports no other caller on this machine gets, outside the kernel's ephemeral range.

CI once failed 25 tests because docker-registry could not bind the port free_port had returned: the
kernel's port-0 pick had been handed to something else in between.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from landscape import process
from landscape.process import free_port


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "claims"
    monkeypatch.setattr(process, "PORT_CLAIMS", directory)
    return directory


def test_ports_lie_below_the_ephemeral_range_and_are_claimed(claims: Path) -> None:
    floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(process.PORT_FLOOR <= p < floor for p in ports)
    assert {int(f.name) for f in claims.iterdir()} == set(ports)


def test_a_claimed_port_is_not_handed_out_again_until_its_claim_is_stale(
    claims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks = iter([20001, 20001, 20002])
    monkeypatch.setattr(process.random, "randrange", lambda a, b: next(picks))
    assert free_port() == 20001
    assert free_port() == 20002  # 20001 is free to bind but claimed
    stale = time.time() - process.PORT_CLAIM_TTL - 1
    os.utime(claims / "20001", (stale, stale))
    monkeypatch.setattr(process.random, "randrange", lambda a, b: 20001)
    assert free_port() == 20001  # a stale claim is taken over


def test_a_port_someone_listens_on_is_skipped(claims: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = process.random.randrange
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        first = [taken]
        monkeypatch.setattr(process, "_ephemeral_floor", lambda: 65000)
        monkeypatch.setattr(process.random, "randrange", lambda a, b: first.pop() if first else real(a, b))
        port = free_port()
    assert not first  # the listened-on port was tried ...
    assert port != taken  # ... and skipped
    assert not (claims / str(taken)).exists()


def test_processes_never_share_a_port(claims: Path) -> None:
    """Four interpreters at once (as pytest-xdist workers are) each take 100 ports: no port twice."""
    code = (
        "import sys; from pathlib import Path; from landscape import process; "
        "process.PORT_CLAIMS = Path(sys.argv[1]); "
        "print(' '.join(str(process.free_port()) for _ in range(100)))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(claims)], stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    ports = [int(p) for proc in procs for p in proc.communicate(timeout=60)[0].split()]
    assert all(proc.returncode == 0 for proc in procs)
    assert len(ports) == 400
    assert len(set(ports)) == 400


def test_no_free_port_says_what_to_do(claims: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_bindable", lambda host, port: False)
    with pytest.raises(process.LandscapeError, match="stop leftover landscape processes"):
        free_port()
