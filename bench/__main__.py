"""`make bench` / `python -m bench [--quick] [NAME ...]`: run the benchmarks, each in its own process.

Each prints its curve (a table per load level) with the baseline measured in the same run, says what
saturated first, and writes a PNG under bench/results/. ``--quick`` runs each sweep small (seconds to a
minute each) as a smoke test; benchmarks that measure a single point and know no ``--quick`` are
skipped then.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHES = {"handwritten", "bmcfan"}  # helpers, not benchmarks


def available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name not in NOT_BENCHES and not m.name.startswith("_")
    )


def sweeps(name: str) -> bool:
    """Whether the benchmark sweeps its load (and so takes --quick)."""
    return "add_common_args" in (HERE / f"{name}.py").read_text()


def main() -> int:
    args = sys.argv[1:]
    quick = "--quick" in args
    names = [a for a in args if a != "--quick"] or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        if quick and not sweeps(name):
            print(f"\n=== bench.{name}: single point, no --quick: skipped ===", flush=True)
            continue
        print(f"\n=== bench.{name} ===", flush=True)
        cmd = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else [])]
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not finish: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
