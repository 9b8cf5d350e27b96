"""`apeiro dev up | down | status | env` and `apeiro demo`: the local landscape from the terminal.

The landscape is a separate distribution that production installs do not have: it is loaded inside
these commands only (:mod:`workers.landscape_loader`), never when the module is imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from workers import landscape_loader
from workers.cli.common import fail


def _modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """(landscape.landscape, landscape.local, landscape.process); LandscapeNotInstalled if absent."""
    return (
        landscape_loader.load("landscape.landscape"),
        landscape_loader.load("landscape.local"),
        landscape_loader.load("landscape.process"),
    )


def _needs_landscape(cmd: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Exit 2 with the install hint, not a traceback, when the landscape is not installed."""

    def run(args: argparse.Namespace) -> int:
        try:
            return cmd(args)
        except landscape_loader.LandscapeNotInstalled as exc:
            return fail(str(exc), 2)

    run.__doc__ = cmd.__doc__
    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="start and stop the local landscape with its workers")
    dev_sub = dev.add_subparsers(dest="dev_command", metavar="ACTION", required=True)

    p = dev_sub.add_parser("up", help="start the landscape and workers in the background")
    p.add_argument("--state-dir", type=Path, default=None, help="default: $APEIRO_STATE_DIR or .apeiro/landscape")
    p.add_argument("--queues", default="all", help="task queues the background worker serves")
    p.add_argument("--no-workers", action="store_true", help="start only the landscape")
    p.add_argument("--foreground", action="store_true", help="stay in the foreground; Ctrl-C stops everything")
    p.set_defaults(func=_needs_landscape(cmd_up))

    p = dev_sub.add_parser("down", help="stop what `dev up` started")
    p.add_argument("--state-dir", type=Path, default=None, help="default: $APEIRO_STATE_DIR or .apeiro/landscape")
    p.set_defaults(func=_needs_landscape(cmd_down))

    p = dev_sub.add_parser("status", help="show the running landscape")
    p.add_argument("--state-dir", type=Path, default=None, help="default: $APEIRO_STATE_DIR or .apeiro/landscape")
    p.set_defaults(func=_needs_landscape(cmd_status))

    p = dev_sub.add_parser("env", help="print `export` lines that point clients at the landscape")
    p.add_argument("--state-dir", type=Path, default=None, help="default: $APEIRO_STATE_DIR or .apeiro/landscape")
    p.set_defaults(func=_needs_landscape(cmd_env))

    p = sub.add_parser("demo", help="run the edge-site pipeline against a fresh local landscape")
    p.add_argument("--state-dir", type=Path, default=Path(".apeiro/demo"),
                   help="where the demo's landscape keeps its state (default .apeiro/demo)")
    p.add_argument("--pipeline", type=Path, default=None, help="another pipeline file to run instead")
    p.set_defaults(func=_needs_landscape(cmd_demo))


def _state_dir(args: argparse.Namespace, base: ModuleType) -> Path:
    """The landscape's state directory: ``--state-dir``, else the landscape's default."""
    state_dir: Path = (args.state_dir or base.default_state_dir()).resolve()
    return state_dir


def _recorded(args: argparse.Namespace) -> tuple[Path, dict[str, Any] | None]:
    """The state directory and the state a running landscape recorded there (None: nothing runs)."""
    base, _, _ = _modules()
    state_dir = _state_dir(args, base)
    state: dict[str, Any] | None = base.read_state(state_dir)
    return state_dir, state


def cmd_up(args: argparse.Namespace) -> int:
    base, local, process = _modules()
    state_dir = _state_dir(args, base)
    landscape = local.local_landscape(state_dir)
    try:
        landscape.start()
    except process.LandscapeError as exc:
        return fail(str(exc))
    env = {**os.environ, **landscape.env()}
    ui = landscape.part("temporal").endpoints.get("ui")
    if ui:
        env["APEIRO_UI_URL"] = ui
    if not args.no_workers:
        log = (state_dir / "workers.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker", "--queues", args.queues],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
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
    print('point clients at it with:  eval "$(apeiro dev env)"')
    if args.foreground:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            base.stop_from_state(state_dir)
            print("stopped.")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    base, _, _ = _modules()
    state_dir = _state_dir(args, base)
    stopped = base.stop_from_state(state_dir)
    print("stopped: " + ", ".join(stopped) if stopped else f"nothing running from {state_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _, _, process = _modules()
    state_dir, state = _recorded(args)
    if state is None:
        print(f"no landscape recorded in {state_dir}")
        return 1
    for part in state["parts"]:
        # A part without processes (seed data, say) is ready once recorded.
        alive = all(process.pid_alive(p) for p in part["pids"])
        print(f"{part['name']:<12} {'up' if alive else 'DOWN':<5} {part['endpoints']}")
    for pid in state.get("workers", []):
        print(f"{'worker':<12} {'up' if process.pid_alive(pid) else 'DOWN':<5} pid {pid}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    state_dir, state = _recorded(args)
    if state is None:
        return fail(f"no landscape recorded in {state_dir}; start one with `apeiro dev up`")
    for part in state["parts"]:
        for key, value in part.get("env", {}).items():
            print(f"export {key}={value}")
        if part["name"] == "temporal" and "ui" in part["endpoints"]:
            print(f"export APEIRO_UI_URL={part['endpoints']['ui']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _, _, process = _modules()
    from workers.demo import run_demo

    try:
        return run_demo(args.state_dir.resolve(), args.pipeline)
    except process.LandscapeError as exc:
        return fail(str(exc))
