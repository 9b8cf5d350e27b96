"""The `apeiro` command. Each command group lives in its own module with a `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

#: Command-group modules; each defines `register(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = (
    "workers.cli.pipeline",
    "workers.cli.dev",
    "workers.cli.worker",
    "workers.cli.baremetal",
    "workers.cli.cluster",
    "workers.cli.ocm",
    "workers.cli.webhook",
    "workers.cli.schedule",
    "workers.cli.codec",
    "workers.cli.promote",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apeiro",
        description="Apeiro lifecycle orchestrator: durable Temporal workflows for an edge landscape.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Per-request lines from HTTP clients and worker life-cycle chatter drown what operators need.
        for noisy in ("httpx", "httpcore", "temporalio.worker._worker", "kubernetes_asyncio", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except Exception as exc:  # the last line of defence: one line, never a traceback
        from workers.cli.errors import describe

        if args.verbose:
            logging.getLogger("apeiro").exception("unhandled error")
        try:
            message = describe(exc)
        except Exception:
            message = type(exc).__name__
        try:
            print(f"error: {message}", file=sys.stderr)
        except BrokenPipeError:
            pass
        return 1
    return code


def _broken_pipe() -> int:
    """The reader went away (`apeiro status ID | head`): stop quietly, as `cat` does.

    Python would print a BrokenPipeError traceback while flushing stdout at exit; pointing stdout at
    /dev/null first avoids it. 141 is what a shell reports for a process ended by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def entry() -> None:
    """Console-script entry: exit without running interpreter teardown.

    Short-lived Temporal clients can crash during interpreter shutdown after their work is done
    (sdk-python issue 300), which would turn a success into a non-zero exit code.
    """
    code = main()
    logging.shutdown()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _broken_pipe()
    try:
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
