"""`apeiro console`: the operator's console (a live pipeline view with repair buttons) on its own.

The same app is mounted in the webhook gateway at /console/ when APEIRO_CONSOLE=1.
"""

from __future__ import annotations

import argparse

from workers import eventloop
from workers.cli.common import fail
from workers.config import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", help="serve the console: runs, live DAGs, approve/retry/skip/pause/cancel")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090)")
    p.add_argument("--ui-url", default=None, help="the Temporal UI's base URL for links (default $APEIRO_UI_URL)")
    p.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    import uvicorn

    from triggers.console.app import create_console
    from workers.cli.common import uvicorn_log_config

    try:
        loop = eventloop.loop_name()
    except ConfigError as exc:
        return fail(str(exc), 2)
    app = create_console(ui_url=args.ui_url)
    print(f"console on http://{args.host}:{args.port}/")
    # Open event streams (the run pages) must not hold a shutdown: they reconnect to the next console.
    uvicorn.run(
        app, host=args.host, port=args.port, loop=loop, log_config=uvicorn_log_config(), timeout_graceful_shutdown=3
    )
    return 0
