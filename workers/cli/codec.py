"""`apeiro codec serve | keygen`: the Temporal UI's remote codec endpoint and key generation."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from definitions.secrets import secret_ref_arg
from workers import eventloop
from workers.cli.common import fail, uvicorn_log_config
from workers.codec import ENV_KEYS, CodecConfigError, codec_from_env, generate_key
from workers.config import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("codec", help="payload encryption: codec server for the Temporal UI, key generation")
    csub = p.add_subparsers(dest="codec_command", metavar="SUBCOMMAND")

    s = csub.add_parser("serve", help="serve /encode and /decode for the Temporal UI (keys from APEIRO_PAYLOAD_KEYS)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8888, help="port to listen on (default 8888)")
    s.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        help="a Temporal UI origin allowed to call (repeatable; default http://localhost:8233)",
    )
    s.add_argument(
        "--token-ref",
        action="append",
        type=secret_ref_arg,
        default=[],
        help="secret reference to a bearer token callers must present (repeatable)",
    )
    # OIDC settings also from the environment, so one compose service works with and without sign-in.
    s.add_argument(
        "--oidc-issuer",
        default=os.environ.get("APEIRO_CODEC_OIDC_ISSUER") or None,
        help="accept JWT access tokens from this issuer (with --oidc-public-key; APEIRO_CODEC_OIDC_ISSUER)",
    )
    s.add_argument("--oidc-audience", default=os.environ.get("APEIRO_CODEC_OIDC_AUDIENCE") or "temporal-ui",
                   help="the audience the UI's OIDC tokens must name ($APEIRO_CODEC_OIDC_AUDIENCE)")
    s.add_argument(
        "--oidc-public-key",
        type=Path,
        default=os.environ.get("APEIRO_CODEC_OIDC_PUBLIC_KEY") or None,
        help="PEM public key (RS256 or ES256) that signs the tokens (APEIRO_CODEC_OIDC_PUBLIC_KEY)",
    )
    s.add_argument("--namespace", action="append", default=[], help="only decode for these namespaces")
    s.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    s.add_argument("--tls-key", type=Path, help="private key for --tls-cert")
    s.set_defaults(func=cmd_serve)

    k = csub.add_parser("keygen", help="print a new random AES-256 key (base64) to store as a secret")
    k.set_defaults(func=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from activities.secrets import SecretError, resolve_secret
    from workers.codec_server import CodecServerConfig, OidcLite, create_app

    try:
        codec = codec_from_env()
    except CodecConfigError as exc:
        return fail(str(exc))
    if codec is None:
        return fail(f"{ENV_KEYS} is not set: the codec server needs the same keys as the workers")
    try:
        tokens = [resolve_secret(ref) for ref in args.token_ref]
    except SecretError as exc:
        return fail(exc.message)
    oidc = None
    if args.oidc_issuer or args.oidc_public_key:
        if not (args.oidc_issuer and args.oidc_public_key):
            return fail("--oidc-issuer and --oidc-public-key go together")
        try:
            public_key = Path(args.oidc_public_key).read_bytes()
        except OSError as exc:
            return fail(f"--oidc-public-key {args.oidc_public_key}: {exc.strerror}")
        oidc = OidcLite(public_key, args.oidc_issuer, args.oidc_audience)
    if bool(args.tls_cert) != bool(args.tls_key):
        return fail("--tls-cert and --tls-key go together")
    try:
        config = CodecServerConfig(
            codec=codec,
            cors_origins=args.cors_origin or ["http://localhost:8233"],
            tokens=tokens,
            oidc=oidc,
            namespaces=args.namespace,
        )
    except ValueError as exc:
        return fail(f"{exc} (--token-ref env:NAME, or --oidc-issuer with --oidc-public-key)")
    try:
        loop = eventloop.loop_name()
    except ConfigError as exc:
        return fail(str(exc), 2)
    uvicorn.run(
        create_app(config),
        loop=loop,
        host=args.host,
        port=args.port,
        log_level="info",
        log_config=uvicorn_log_config(),
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
    )
    return 0
