"""`apeiro webhook serve | check | openapi | sign`: the webhook gateway."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from definitions.secrets import secret_ref_arg
from definitions.validate import DefinitionError
from workers import eventloop
from workers.cli.common import fail, uvicorn_log_config
from workers.config import ConfigError

if TYPE_CHECKING:
    from definitions.triggers import GatewayConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("webhook", help="the webhook gateway (registry, Alertmanager, CloudEvents, boot callbacks)")
    wsub = p.add_subparsers(dest="webhook_command", metavar="SUBCOMMAND")

    s = wsub.add_parser("serve", help="serve the gateway with uvicorn")
    _config_arg(s)
    s.add_argument(
        "--host",
        default=os.environ.get("APEIRO_WEBHOOK_HOST", "127.0.0.1"),
        help="listen address (APEIRO_WEBHOOK_HOST; 0.0.0.0 in containers)",
    )
    s.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("APEIRO_WEBHOOK_PORT", "8080")),
        help="listen port (APEIRO_WEBHOOK_PORT)",
    )
    s.add_argument("--skip-key-check", action="store_true", help="start even if a key reference does not resolve")
    s.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    s.set_defaults(func=cmd_serve)

    c = wsub.add_parser("check", help="check the gateway configuration (schema, rules, keys)")
    _config_arg(c)
    c.add_argument("--skip-key-check", action="store_true", help="do not resolve the key references")
    c.set_defaults(func=cmd_check)

    o = wsub.add_parser("openapi", help="print the gateway's OpenAPI document")
    _config_arg(o)
    o.set_defaults(func=cmd_openapi)

    g = wsub.add_parser("sign", help="print the X-Apeiro-Signature header for a body (for senders and tests)")
    g.add_argument("file", help="the body to sign ('-' for stdin)")
    g.add_argument(
        "--key-ref", required=True, type=secret_ref_arg, help="secret reference of the HMAC key (env:/file:/k8s:)"
    )
    g.set_defaults(func=cmd_sign)
    p.set_defaults(func=lambda args: _usage(p))


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=None,
        help="gateway configuration (APEIRO_WEBHOOK_CONFIG; default definitions/webhooks.yaml)",
    )


def _checked_config(args: argparse.Namespace) -> tuple[Path, GatewayConfig] | None:
    """The gateway configuration ``--config`` names, checked (keys resolved unless
    ``--skip-key-check``); None, the problems printed to stderr, when it is not valid."""
    from triggers.config import config_path, load_checked

    path = config_path(args.config)
    try:
        return path, load_checked(path, resolve_keys=not args.skip_key_check)
    except DefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    checked = _checked_config(args)
    if checked is None:
        return 1
    path, config = checked
    print(f"{path}: {len(config.routes)} route(s) valid")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from triggers.admission import AdmissionConfigError
    from triggers.app import create_app

    checked = _checked_config(args)
    if checked is None:
        return 1
    path, config = checked
    try:
        loop = eventloop.loop_name()
        app = create_app(config)
    except (ConfigError, AdmissionConfigError) as exc:
        return fail(str(exc), 2)
    print(
        f"webhook gateway: {len(config.routes)} route(s) from {path} on http://{args.host}:{args.port} "
        "(OpenAPI at /openapi.json, metrics at /metrics)",
        flush=True,
    )
    uvicorn.run(
        app,
        loop=loop,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=5,  # open console event streams must not hold a shutdown
    )
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from triggers.admission import AdmissionConfigError
    from triggers.app import create_app
    from triggers.config import config_path, load_checked

    try:
        config = load_checked(config_path(args.config), resolve_keys=False)
    except DefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        app = create_app(config)
    except AdmissionConfigError as exc:
        return fail(str(exc), 2)
    print(json.dumps(app.openapi(), indent=2))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from activities.secrets import SecretError, resolve_secret
    from triggers.auth import sign

    body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    try:
        key = resolve_secret(args.key_ref)
    except SecretError as exc:
        return fail(exc.message)
    print(sign(body, key))
    return 0


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2
