"""`make bench` / `python -m bench [--quick] [NAME ...]`: run the benchmarks, each in its own process.

Each prints its curve (a table per load level) with the baseline measured in the same run, says what
saturated first, and writes a PNG under bench/results/. ``--quick`` runs each sweep small (seconds to a
minute or two each) as a smoke test. Diagnostics (``DIAGNOSTICS``) are run by name only
(``python -m bench.transport_chunks``): they take one part of a benchmark apart, not a load curve.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Modules the benchmarks import (a hand-written workflow, the many-BMC emulator front), not benchmarks.
HELPERS = {"handwritten", "bmcfan"}
#: Run by hand: ``transport_chunks`` times ``copy_blob``'s chunk schedules without Temporal, to explain
#: ``bench.transport``'s figures (docs/performance.md, "Component transport").
DIAGNOSTICS = {"transport_chunks"}


def available() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(HERE)])
        if m.name not in HELPERS | DIAGNOSTICS and not m.name.startswith("_")
    )


def main() -> int:
    args = sys.argv[1:]
    quick = "--quick" in args
    names = [a for a in args if a != "--quick"] or available()
    known = [*available(), *sorted(DIAGNOSTICS)]
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(known)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        cmd = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick and name not in DIAGNOSTICS else [])]
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not finish: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
