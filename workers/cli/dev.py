"""`apeiro dev up | down | status | env` and `apeiro demo`: the local landscape from the terminal."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from landscape.landscape import default_state_dir, read_state, stop_from_state
from landscape.local import local_landscape
from landscape.process import LandscapeError, pid_alive
from workers.cli.common import fail


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="start and stop the local landscape with its workers")
    dev_sub = dev.add_subparsers(dest="dev_command", metavar="ACTION", required=True)

    p = dev_sub.add_parser("up", help="start the landscape and workers in the background")
    p.add_argument("--state-dir", type=Path, default=None, help="default: $APEIRO_STATE_DIR or .apeiro/landscape")
    p.add_argument("--queues", default="all", help="task queues the background worker serves")
    p.add_argument("--no-workers", action="store_true", help="start only the landscape")
    p.add_argument("--foreground", action="store_true", help="stay in the foreground; Ctrl-C stops everything")
    p.set_defaults(func=cmd_up)

    p = dev_sub.add_parser("down", help="stop what `dev up` started")
    p.add_argument("--state-dir", type=Path, default=None)
    p.set_defaults(func=cmd_down)

    p = dev_sub.add_parser("status", help="show the running landscape")
    p.add_argument("--state-dir", type=Path, default=None)
    p.set_defaults(func=cmd_status)

    p = dev_sub.add_parser("env", help="print `export` lines that point clients at the landscape")
    p.add_argument("--state-dir", type=Path, default=None)
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("demo", help="run the edge-site pipeline against a fresh local landscape")
    p.add_argument("--state-dir", type=Path, default=Path(".apeiro/demo"))
    p.add_argument("--pipeline", type=Path, default=None, help="another pipeline file to run instead")
    p.set_defaults(func=cmd_demo)


def cmd_up(args: argparse.Namespace) -> int:
    state_dir = (args.state_dir or default_state_dir()).resolve()
    landscape = local_landscape(state_dir)
    try:
        landscape.start()
    except LandscapeError as exc:
        return fail(str(exc))
    env = {**os.environ, **landscape.env()}
    ui = landscape.part("temporal").endpoints.get("ui")
    if ui:
        env["APEIRO_UI_URL"] = ui
    if not args.no_workers:
        log = (state_dir / "workers.log").open("ab")
        worker = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--queues", args.queues],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
        log.close()
        time.sleep(1.0)
        if worker.poll() is not None:
            landscape.stop()
            return fail(f"the worker exited at once; see {state_dir / 'workers.log'}")
        landscape.extra_pids.append(worker.pid)
        landscape.write_state()
    print(f"landscape up (state in {state_dir})")
    for part in landscape.parts:
        print(f"  {part.name:<12} {', '.join(f'{k}={v}' for k, v in part.endpoints.items())}")
    if not args.no_workers:
        print(f"  workers      pid {landscape.extra_pids[-1]} queues={args.queues} log={state_dir / 'workers.log'}")
    print("point clients at it with:  eval \"$(apeiro dev env)\"")
    if args.foreground:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            stop_from_state(state_dir)
            print("stopped.")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state_dir = (args.state_dir or default_state_dir()).resolve()
    stopped = stop_from_state(state_dir)
    print("stopped: " + ", ".join(stopped) if stopped else f"nothing running from {state_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = (args.state_dir or default_state_dir()).resolve()
    state = read_state(state_dir)
    if state is None:
        print(f"no landscape recorded in {state_dir}")
        return 1
    for part in state["parts"]:
        # A part without processes (seed data, say) is ready once recorded.
        alive = all(pid_alive(p) for p in part["pids"])
        print(f"{part['name']:<12} {'up' if alive else 'DOWN':<5} {part['endpoints']}")
    for pid in state.get("workers", []):
        print(f"{'worker':<12} {'up' if pid_alive(pid) else 'DOWN':<5} pid {pid}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    state_dir = (args.state_dir or default_state_dir()).resolve()
    state = read_state(state_dir)
    if state is None:
        return fail(f"no landscape recorded in {state_dir}; start one with `apeiro dev up`")
    for part in state["parts"]:
        for key, value in part.get("env", {}).items():
            print(f"export {key}={value}")
        if part["name"] == "temporal" and "ui" in part["endpoints"]:
            print(f"export APEIRO_UI_URL={part['endpoints']['ui']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workers.demo import run_demo

    try:
        return run_demo(args.state_dir.resolve(), args.pipeline)
    except LandscapeError as exc:
        return fail(str(exc))
