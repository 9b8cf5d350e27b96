"""`apeiro deploy describe|set-current`: move new work to a new worker build, see what stays on old ones.

Shipping a workflow change: start workers of the new build next to the old ones
(``apeiro worker --deployment-name apeiro --build-id B``), then ``apeiro deploy set-current apeiro
B``. New runs and AUTO_UPGRADE runs go to B; PINNED runs finish on the build they started on, so
keep its workers until ``apeiro deploy describe apeiro`` lists no run on it.
"""

from __future__ import annotations

import argparse
import json

from workers.cli.common import client_from_env, fail, run_async
from workers.config import ConfigError
from workers.versioning import ENV_DEPLOYMENT


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("deploy", help="shift traffic between worker builds (Worker Deployment Versioning)")
    dsub = p.add_subparsers(dest="deploy_command", metavar="ACTION", required=True)
    d = dsub.add_parser("describe", help="versions, the current one, and running workflows per build")
    d.add_argument("deployment", nargs="?", help=f"deployment name (default: ${ENV_DEPLOYMENT})")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=cmd_describe)
    s = dsub.add_parser("set-current", help="make a build the current version (new runs go there)")
    s.add_argument("deployment", help="deployment name")
    s.add_argument("build_id", help="build id whose workers are already running")
    s.set_defaults(func=cmd_set_current)


def _deployment(args: argparse.Namespace) -> str | None:
    import os

    name: str | None = args.deployment or os.environ.get(ENV_DEPLOYMENT) or None
    return name


def cmd_describe(args: argparse.Namespace) -> int:
    from workers.deploy import DeployError, describe

    name = _deployment(args)
    if not name:
        return fail(f"name a deployment (or set {ENV_DEPLOYMENT})", 2)

    async def go() -> int:
        try:
            view = await describe(await client_from_env(), name)
        except (DeployError, ConfigError) as exc:
            return fail(str(exc), 2 if isinstance(exc, DeployError) else 1)
        if args.json:
            print(json.dumps(view.model_dump(), indent=1))
            return 0
        print(f"deployment {view.name}: current build {view.current_build_id or '(none)'}")
        counts = view.runs_by_build()
        for v in view.versions:
            mark = "*" if v.build_id == view.current_build_id else " "
            n = counts.get(v.build_id, 0)
            print(f" {mark} {v.build_id:<24} {v.status:<10} {v.drainage or '-':<10} {n} running")
        old = [r for r in view.runs if r.build_id != view.current_build_id]
        if old:
            print("runs on other builds than the current one:")
            for r in old:
                print(f"   {r.build_id:<24} {r.behavior:<12} {r.workflow_type} {r.workflow_id}")
        return 0

    return run_async(go())


def cmd_set_current(args: argparse.Namespace) -> int:
    from workers.deploy import DeployError, set_current

    async def go() -> int:
        try:
            previous = await set_current(await client_from_env(), args.deployment, args.build_id)
        except ConfigError as exc:
            return fail(str(exc))
        except DeployError as exc:
            return fail(str(exc), 2)
        print(
            f"deployment {args.deployment}: current build {args.build_id} (was {previous or 'none'}); "
            f"pinned runs stay on their build: `apeiro deploy describe {args.deployment}` lists them"
        )
        return 0

    return run_async(go())
