"""`apeiro mesh manifests`: what a Platform Mesh provider applies to offer our API.

`--form kcp` (default) prints APIResourceSchemas, the APIExport, its endpoint slice, ProviderMetadata,
ContentConfiguration, the bind ClusterRole and the Pipeline catalogue; `--form syncagent` prints CRDs
and api-syncagent PublishedResources for a provider that runs its own cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mesh", help="Platform Mesh provider: generate manifests")
    msub = p.add_subparsers(dest="mesh_command", metavar="SUBCOMMAND")
    m = msub.add_parser("manifests", help="print the provider's manifests as multi-document YAML")
    m.add_argument("--form", choices=("kcp", "syncagent"), default="kcp", help="kcp workspace or api-syncagent")
    m.add_argument(
        "--provider-path",
        default="root:providers:apeiro",
        help="the provider workspace's logical path (written into the APIExportEndpointSlice)",
    )
    m.add_argument(
        "--catalog",
        action="store_true",
        help="add the Pipeline catalogue objects (the controller publishes them into bound workspaces; "
        "with --form syncagent they can be applied to the service cluster)",
    )
    m.add_argument("--write", metavar="FILE", help="write to FILE instead of standard output (always YAML)")
    m.set_defaults(func=cmd_manifests)
    c = msub.add_parser("controller", help="run the orders placed in workspaces bound to our APIExport")
    c.add_argument(
        "--provider-url",
        required=True,
        help="the provider workspace's URL, e.g. https://kcp.example/clusters/root:providers:apeiro",
    )
    c.add_argument("--endpoint-slice", default="orchestrator.apeiro.dev", help="APIExportEndpointSlice name")
    c.add_argument("--token-ref", help="bearer token for kcp as a secret reference (env:NAME, file:/path)")
    c.add_argument("--ca-file", help="CA bundle for kcp's TLS certificate")
    c.add_argument("--poll-interval", type=float, default=2.0, help="seconds between looks at running orders")
    c.set_defaults(func=cmd_controller)
    d = msub.add_parser("demo", help="order a PipelineRun through a kcp binding on a local landscape")
    d.add_argument("--state-dir", type=Path, default=Path(".apeiro/mesh-demo"),
                   help="where the demo keeps the local Temporal and kcp state (default: .apeiro/mesh-demo)")
    d.set_defaults(func=cmd_demo)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def manifests(form: str, provider_path: str, catalog: bool) -> list[dict[str, Any]]:
    from definitions.mesh_manifests import catalog_objects, kcp_manifests, syncagent_manifests

    docs = kcp_manifests(provider_path) if form == "kcp" else syncagent_manifests()
    if catalog:
        docs += catalog_objects(_catalog_pipelines())
    return docs


def _catalog_pipelines() -> list[Any]:
    """Every pipeline the workers know (APEIRO_DEFINITIONS, then the shipped examples)."""
    from definitions.library import PipelineLibrary
    from definitions.validate import parse_pipeline

    library = PipelineLibrary()
    return [parse_pipeline(library.load(name), name) for name in library.names()]


def render(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True, width=100)


def cmd_manifests(args: argparse.Namespace) -> int:
    text = render(manifests(args.form, args.provider_path, args.catalog))
    if args.write:
        Path(args.write).write_text(text)
        print(f"wrote {args.write}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_controller(args: argparse.Namespace) -> int:
    import asyncio

    import httpx

    from activities.secrets import resolve_secret
    from workers.cli.common import client_from_env
    from workers.mesh.controller import Controller

    headers = {"Authorization": f"Bearer {resolve_secret(args.token_ref)}"} if args.token_ref else {}

    async def go() -> int:
        temporal = await client_from_env()
        async with httpx.AsyncClient(headers=headers, verify=args.ca_file or True, timeout=30) as http:
            controller = Controller(
                temporal, http, args.provider_url, args.endpoint_slice, poll_interval=args.poll_interval
            )
            await controller.run()
        return 0

    return asyncio.run(go())


def cmd_demo(args: argparse.Namespace) -> int:
    from workers.mesh.demo import run_mesh_demo

    return run_mesh_demo(args.state_dir.resolve())
