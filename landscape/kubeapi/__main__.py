"""`python -m landscape.kubeapi --port P [--plugin MODULE]... [--set KEY=VALUE]...`"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import uvicorn

from landscape.kubeapi.app import build_server, make_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m landscape.kubeapi")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plugin", action="append", default=[], help="module with install(server)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="plugin setting (VALUE parsed as JSON when it is JSON)",
    )
    parser.add_argument("--bookmark-interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    config: dict[str, object] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = build_server(args.plugin, config)
    server.bookmark_interval = args.bookmark_interval
    uvicorn.run(make_app(server), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
