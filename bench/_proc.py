"""What a benchmark reads about a process from ``/proc``: CPU, run-queue wait, page faults, peak RSS.

Linux only (the benchmarks run on the project's Debian machines); each figure is "so far", so a
benchmark takes one before and one after what it measures.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid: int) -> int:
    """Minor page faults of a process so far (fresh memory touched: each costs the kernel a zeroed page)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds so far per thread of a process, keyed ``name/tid``."""
    out: dict[str, float] = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            st = (t / "stat").read_text()
            f = st.rsplit(")", 1)[1].split()
            out[f"{st[st.index('(') + 1 : st.rindex(')')]}/{t.name}"] = (int(f[11]) + int(f[12])) / os.sysconf(
                "SC_CLK_TCK"
            )
    return out


def runqueue_wait_s(pid: int) -> float:
    """Seconds the process's threads so far waited runnable for a CPU (``/proc/PID/task/*/schedstat``)."""
    total = 0
    for t in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((t / "schedstat").read_text().split()[1])
    return total / 1e9


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
