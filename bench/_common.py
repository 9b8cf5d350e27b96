"""What every benchmark shares: a load sweep's table, its PNG plot, and a clean process exit.

A benchmark measures a curve (one row per load level) with its baseline in the same run, prints the
table, says what saturated first, and writes ``bench/results/<name>.png`` (gitignored). Each takes
``--quick``: a few small load levels, so the lead can smoke-test it in seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a small sweep that runs in seconds (smoke test)")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table (numbers right-aligned, floats with one decimal)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    cells = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def plot(
    name: str,
    title: str,
    xlabel: str,
    ylabel: str,
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    hline: tuple[float, str] | None = None,
    logx: bool = False,
) -> Path | None:
    """Write ``bench/results/<name>.png``; returns its path (None when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        logging.getLogger("matplotlib").setLevel(logging.WARNING)
        import matplotlib.pyplot as plt
    except ImportError:  # the dev extra has it; a bare install still prints the table
        print("(matplotlib not installed: no plot)")
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for label, points in series.items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=label)
    if hline is not None:
        ax.axhline(hline[0], color="grey", linestyle="--", linewidth=1, label=hline[1])
    if logx:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def load() -> str:
    """The machine's load average, to label figures with (a shared 2-core machine is a busy one)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def report(
    name: str,
    *,
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    saturates: str,
    target: str = "",
    plot_path: Path | None = None,
) -> None:
    print(f"\n{title}")
    print(table(header, rows))
    if target:
        print(f"target: {target}")
    print(f"saturates first: {saturates}")
    print(f"measured at {load()} (above ~1 per core: a busy machine, figures are shapes and ratios only)")
    if plot_path is not None:
        print(f"plot: {plot_path}")
    sys.stdout.flush()


def exit_cleanly(code: int = 0) -> None:
    """Leave without interpreter teardown.

    The Temporal client's Rust core keeps threads (Tokio runtime, gRPC) that the SDK gives no way to
    stop; when CPython finalises while one of them still holds a thread state, the process aborts
    with ``Fatal Python error: PyGILState_Release`` (sdk-python issue 300) after the work is done.
    Every benchmark stops its workers and servers itself first; then nothing is left to tear down.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
