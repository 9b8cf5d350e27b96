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
    "workers.cli.freeze",
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
    # APEIRO_LOG_FORMAT=json: one JSON object per line for every command (workers, gateway, codec).
    from workers.observability import setup_logging

    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        # An optional extra that is not installed: one line naming it, exit 2 (usage), no traceback.
        from workers.cli.extras import missing_extra_message

        message = missing_extra_message(exc.name, _command_path(args))
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    return code


def _command_path(args: argparse.Namespace) -> str:
    """`webhook serve`, `worker`...: the command words the user typed, for messages."""
    words = [args.command]
    for key, value in vars(args).items():
        if key.endswith("_command") and isinstance(value, str):
            words.append(value)
    return " ".join(w for w in words if w)


def entry() -> None:
    """Console-script entry: exit without running interpreter teardown.

    Short-lived Temporal clients can crash during interpreter shutdown after their work is done
    (sdk-python issue 300), which would turn a success into a non-zero exit code.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
