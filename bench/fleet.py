"""Fleet waves (`fleet.rollout`) against the fleet's size: `python -m bench.fleet [--quick]
[--servers 20 100 200] [--shoots 10 25 50]`.

1. A firmware wave over N emulated servers (swept: 20, 100, 200; each behind its own emulated BMC, so
   every server really updates): `server.firmware` BIOS 1.0.0 -> 2.0.0, waves [1, 10%, 100%],
   maxInFlight 10, a soak between waves. The simulated work is the BMC's update task
   (`--firmware-seconds` each).
2. A cluster upgrade wave over M shoots (swept: 10, 25, 50) on the simulated Gardener with a fast
   clock: `cluster.upgrade` 1.30.8 -> 1.31.4, same waves, maxInFlight and soak. The simulated work is
   the gardenlet's reconcile (its tasks x taskSeconds / speed, per upgrade step).

Per level: total time, time per wave (from the rollout's `status` query, polled every 0.1 s), and the
baseline from the same run: per wave ceil(targets / maxInFlight) x the simulated work of one target,
plus the soaks; what is left is our overhead (Temporal round trips, the drift read, the freeze check,
child workflows, polling the BMC task or watching the shoot), as a ratio (total / baseline) and per
target. Setup (discovery, shoot creation) is timed apart and not counted (`bench._fleet_waves`).
Target: every target done, none failed, and the overhead per target flat or falling as the fleet
grows (linear): at every level within 1.25x of the smallest level's. The ratio is reported (no issue
bounds it). CPU per process (this process: workers + client; the dev server; the emulator or garden
API) says what saturates first.

At 10 targets the waves are 1 and 9 (10% of 10 is the first wave's one): one wave and one soak fewer,
so less fixed overhead than the larger levels. Full size took 4.4 minutes on 2 busy cores (load
average 6-10); `--quick` (10 and 20 servers, 5 and 10 shoots) about 1.5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client

from bench._common import add_common_args, exit_cleanly, load, plot, report
from bench._fleet_waves import BENCH, MAX_IN_FLIGHT, Wave, servers, shoots
from landscape.landscape import Landscape
from landscape.temporal import TemporalDevServer
from workers.config import data_converter

LINEAR = 1.25  # overhead per target at any level vs the smallest level's


def linear(waves: list[Wave]) -> dict[int, bool]:
    """Per level of one kind: its overhead per target within LINEAR x the smallest level's."""
    if not waves:
        return {}
    first = min(waves, key=lambda w: w.expected).ms_per_target
    return {w.expected: w.ms_per_target <= LINEAR * max(first, 1.0) for w in waves}


def busiest(waves: list[Wave]) -> str:
    if not waves:
        return ""
    last = max(waves, key=lambda w: w.expected)
    order = sorted(last.cpu.items(), key=lambda kv: -kv[1])
    out = f"{last.kind} wave at {last.expected} targets: {order[0][0]}, {order[0][1]:.2f} cores (then " + ", ".join(
        f"{k} {v:.2f}" for k, v in order[1:]
    )
    out += ")"
    if order[0][1] < 0.8:
        out += ", none near a core: the waits (soaks, simulated work, polls) and the shared machine bound it"
    return out


def summarize(fw: list[Wave], up: list[Wave], soak_s: float) -> None:
    lin = {"firmware": linear(fw), "upgrade": linear(up)}
    rows: list[list[object]] = []
    for w in [*fw, *up]:
        ok = w.complete and lin[w.kind][w.expected]
        rows.append(
            [
                w.kind,
                w.expected,
                "/".join(str(n) for n in w.sizes),
                w.total,
                w.baseline,
                w.total / w.baseline,
                w.overhead,
                w.ms_per_target,
                *(w.cpu.get(k, 0.0) for k in (BENCH, "temporal")),
                w.cpu.get("emulated BMCs", w.cpu.get("garden API", 0.0)),
                f"{len(w.result.succeeded) + len(w.result.in_sync)}/{len(w.result.failed)}",
                "met" if ok else "NOT met",
            ]
        )
    series: dict[str, Sequence[tuple[float, float]]] = {}
    for kind, waves in (("firmware", fw), ("upgrade", up)):
        if waves:
            series[f"{kind} wave"] = [(w.expected, w.total) for w in waves]
            series[f"{kind} baseline"] = [(w.expected, w.baseline) for w in waves]
    path = plot(
        "fleet",
        f"fleet waves vs targets (waves [1, 10%, 100%], maxInFlight {MAX_IN_FLIGHT}, soak {soak_s:g} s)",
        "targets (servers or shoots)",
        "wall s",
        series,
    )
    works = "; ".join(f"{w.kind}: {w.work}" for w in (fw[:1] + up[:1]))
    report(
        "fleet",
        title=f"fleet rollout waves per level (simulated work per target -- {works}; CPU in cores during the wave)",
        header=[
            "wave",
            "targets",
            "wave sizes",
            "wall s",
            "baseline s",
            "ratio",
            "overhead s",
            "ms/target",
            "bench CPU",
            "temporal CPU",
            "peer CPU",
            "done/failed",
            "target",
        ],
        rows=rows,
        target=f"baseline (same run): per wave ceil(targets / {MAX_IN_FLIGHT}) x one target's simulated work, plus "
        f"{soak_s:g} s soaks; target: every target done, none failed, and overhead per target within {LINEAR}x of "
        "the smallest level's at every level (linear in the fleet's size); the ratio is reported, no issue bounds "
        f"it -- {'met' if rows and all(r[-1] == 'met' for r in rows) else 'NOT met'}",
        saturates="; ".join(s for s in (busiest(fw), busiest(up)) if s)
        + " (peer: the emulated BMCs or the garden API)",
        plot_path=path,
    )


async def run(levels_n: Sequence[int], levels_m: Sequence[int], firmware_s: float, speed: float, soak_s: float) -> None:
    fw: list[Wave] = []
    up: list[Wave] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as d:
        tmp = Path(d)
        temporal = TemporalDevServer(headless=True, persistent=False)
        with Landscape([temporal], state_dir=tmp / "temporal").running():
            client = await Client.connect(temporal.endpoints["address"], data_converter=data_converter())
            for n in levels_n:
                fw.append(await servers(client, tmp / f"rack-{n}-{len(fw)}", n, firmware_s, soak_s, temporal.pids))
                print(f"{fw[-1].progress()}; {load()}", flush=True)
            for m in levels_m:
                up.append(await shoots(client, tmp / f"garden-{m}-{len(up)}", m, speed, soak_s, temporal.pids))
                print(f"{up[-1].progress()}; {load()}", flush=True)
    summarize(fw, up, soak_s)


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(ap)
    ap.add_argument(
        "--servers", type=int, nargs="+", help="emulated servers per firmware wave level (default 20 100 200; 0: skip)"
    )
    ap.add_argument(
        "--shoots", type=int, nargs="+", help="shoots per cluster upgrade level (default 10 25 50; 0: skip)"
    )
    ap.add_argument("--firmware-seconds", type=float, default=1.0, help="the emulated BMC's update task")
    ap.add_argument("--speed", type=float, default=600.0, help="simulated Gardener seconds per real second")
    ap.add_argument("--soak", type=float, default=2.0, help="soak between waves, seconds (the fast clock)")
    args = ap.parse_args()
    n = args.servers or ([10, 20] if args.quick else [20, 100, 200])
    m = args.shoots or ([5, 10] if args.quick else [10, 25, 50])
    if any(x < 0 for x in [*n, *m]):
        ap.error("--servers and --shoots take counts of 0 or more")
    asyncio.run(
        run(
            sorted(x for x in set(n) if x), sorted(x for x in set(m) if x), args.firmware_seconds, args.speed, args.soak
        )
    )
    exit_cleanly(0)  # sdk-python issue 300: no interpreter teardown with Temporal's threads alive


if __name__ == "__main__":
    main()
