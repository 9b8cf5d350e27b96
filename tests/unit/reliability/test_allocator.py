"""workers/allocator.py: the ocm worker keeps its ~1 MiB stream buffers in the heap instead of faulting
fresh pages in for each one (docs/performance.md, component transport, fourth pass)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

# Three ~1 MiB buffers alive at a time, freed, 200 times: what a blob copy does per piece.
CHURN = textwrap.dedent(
    """
    import os, resource, sys
    if sys.argv[1] == "tune":
        from workers.allocator import tune_for_streaming
        assert tune_for_streaming() is True
        assert tune_for_streaming() is True  # once per process, idempotent
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    before = faults()
    for _ in range(200):
        a = os.urandom(16) * (1024 * 1024 // 16)
        b = a + b"x"
        c = b[:-1] + b"yy"
        del a, b, c
    print(faults() - before)
    """
)


def _faults(mode: str, **env: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHURN, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd(), **env},
    )
    return int(out.stdout.strip())


def test_tuned_process_reuses_buffers_instead_of_faulting_them_in() -> None:
    default, tuned = _faults("default"), _faults("tune")
    # default: the heap top is given back and faulted in again (~1000 faults per round); tuned: reused
    assert default > 50_000, default
    assert tuned < default / 20, (tuned, default)


def test_operator_settings_win() -> None:
    code = "from workers.allocator import tune_for_streaming; print(tune_for_streaming())"
    for env in ({"MALLOC_TRIM_THRESHOLD_": "1048576"}, {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": os.getcwd(), **env},
        )
        assert out.stdout.strip() == "False", env
