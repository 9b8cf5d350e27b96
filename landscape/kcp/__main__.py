"""`python -m landscape.kcp --port P`: serve the local kcp (workspaces and virtual workspaces)."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from landscape.kcp.front import make_kcp_app
from landscape.kcp.workspaces import Kcp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m landscape.kcp")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kcp = Kcp(base_url=f"http://{args.host}:{args.port}")
    uvicorn.run(make_kcp_app(kcp), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
