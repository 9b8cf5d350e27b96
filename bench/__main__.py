"""`make bench` / `python -m bench [NAME ...]`: run the benchmarks, each in its own process.

Each prints its figure and the baseline it is compared against, measured in the same run.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHES = {"handwritten"}


def available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name not in NOT_BENCHES and not m.name.startswith("_")
    )


def main() -> int:
    names = sys.argv[1:] or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not finish: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
