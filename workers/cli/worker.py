"""`apeiro worker --queues a,b`: run workers for any subset of task queues in this process.

Run several processes for the same queue to scale it; each layer scales on its own.
"""

from __future__ import annotations

import argparse

from workers import eventloop
from workers.cli.common import client_from_env, fail
from workers.config import ConfigError
from workers.queues import known_queues
from workers.versioning import ENV_BUILD_ID, ENV_DEPLOYMENT, VersioningConfigError, deployment_version
from workers.worker import run_workers


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run Temporal workers for some or all task queues")
    p.add_argument("--queues", default="all",
                   help=f"comma-separated task queues, or 'all' ({', '.join(known_queues())})")
    p.add_argument("--deployment-name", default=None,
                   help=f"Worker Deployment name (default ${ENV_DEPLOYMENT}); with --build-id runs versioned")
    p.add_argument("--build-id", default=None,
                   help=f"this build's id, e.g. a git commit (default ${ENV_BUILD_ID})")
    p.set_defaults(func=cmd_worker)


def parse_queues(text: str) -> list[str]:
    if text.strip() == "all":
        return known_queues()
    queues = [q.strip() for q in text.split(",") if q.strip()]
    unknown = [q for q in queues if q not in known_queues()]
    if unknown:
        raise ValueError(f"unknown task queue(s) {', '.join(unknown)}; known: {', '.join(known_queues())}")
    if not queues:
        raise ValueError("no task queue given")
    return queues


def cmd_worker(args: argparse.Namespace) -> int:
    try:
        queues = parse_queues(args.queues)
        deployment = deployment_version(args.deployment_name, args.build_id)
    except (ValueError, VersioningConfigError) as exc:
        return fail(str(exc), 2)

    from workers.observability import setup_logging

    setup_logging()

    async def go() -> int:
        try:
            client = await client_from_env()
        except ConfigError as exc:
            return fail(str(exc))
        if deployment is not None:
            from workers.deploy import check_deployment

            problem = await check_deployment(client, deployment)
            if problem:
                return fail(problem, 2)
        await run_workers(client, queues, deployment=deployment)
        return 0

    try:
        return eventloop.run(go())
    except ConfigError as exc:
        return fail(str(exc), 2)
