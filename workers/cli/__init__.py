"""The `apeiro` command. Each command group lives in its own module with a `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from workers.cli.output import add_root_output_option

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
    "workers.cli.mesh",
    "workers.cli.runs",
    "workers.cli.repair",
    "workers.cli.console",
    "workers.cli.completion",
    "workers.cli.deploy",
    "workers.cli.freeze",
    "workers.cli.rollout",
)


#: Long-running commands whose process builds only its own command's parser: `apeiro worker` then does
#: not import what the other commands need (CEL, the pipeline library, ...: ~6 MiB of RSS per worker).
LEAN_COMMANDS = {"worker": "workers.cli.worker"}


def lean_module(argv: Sequence[str]) -> str | None:
    """The command module of a ``LEAN_COMMANDS`` command when it is the command ``argv`` names."""
    tokens = iter(argv)
    for token in tokens:
        if token in ("-o", "--output"):
            next(tokens, None)
        elif not token.startswith("-"):
            return LEAN_COMMANDS.get(token)
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command tree, or with ``only`` (a module of ``COMMAND_MODULES``) just that module's commands."""
    parser = argparse.ArgumentParser(
        prog="apeiro",
        description="Apeiro lifecycle orchestrator: durable Temporal workflows for an edge landscape.",
        epilog="exit codes: 0 ok, 1 failed run or invalid input, 2 usage or configuration, "
        "3 not found, 130 interrupted",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version and exit")
    add_root_output_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apeiro-orchestrator")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(lean_module(sys.argv[1:] if argv is None else argv))
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
    except BrokenPipeError:
        return _broken_pipe()
    except ModuleNotFoundError as exc:
        # An optional extra that is not installed: one line naming it, exit 2 (usage), no traceback.
        from workers.cli.extras import missing_extra_message

        message = missing_extra_message(exc.name, _command_path(args))
        if message is None:
            return _unhandled(args, exc)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last line of defence: one line, never a traceback
        return _unhandled(args, exc)
    return code


def _unhandled(args: argparse.Namespace, exc: BaseException) -> int:
    """One `error:` line for an error no command handled (`-v` logs the traceback too)."""
    from workers.cli.errors import describe

    if getattr(args, "verbose", False):
        logging.getLogger("apeiro").exception("unhandled error", exc_info=exc)
    try:
        message = describe(exc)
    except Exception:
        message = type(exc).__name__
    try:
        print(f"error: {message}", file=sys.stderr)
    except BrokenPipeError:
        pass
    return _exit_code(exc)


def _exit_code(exc: BaseException) -> int:
    """The documented exit codes: 3 for a run (or other object) that does not exist, 2 for
    configuration, 1 for everything else."""
    from temporalio.service import RPCError, RPCStatusCode

    from workers.config import ConfigError

    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
        return 3
    if isinstance(exc, ConfigError):
        return 2
    return 1


def _command_path(args: argparse.Namespace) -> str:
    """`webhook serve`, `worker`...: the command words the user typed, for messages."""
    words = [args.command]
    for key, value in vars(args).items():
        if key.endswith("_command") and isinstance(value, str):
            words.append(value)
    return " ".join(w for w in words if w)


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
