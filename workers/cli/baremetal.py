"""`apeiro baremetal`: talk to BMCs directly, without Temporal (operators debugging a BMC)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from definitions.server import (
    BmcConnection,
    BmcCredentials,
    BmcInventory,
    DiscoverInput,
    DiscoverResult,
    DiscoveryProgress,
    SiteDefinition,
    SystemInventory,
    TlsOptions,
)
from workers.cli.output import add_output_option, emit


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("baremetal", help="read BMCs directly (no Temporal needed)")
    sub = group.add_subparsers(dest="baremetal_command", metavar="COMMAND")
    inv = sub.add_parser("inventory", help="print the inventory of every system behind one BMC")
    inv.add_argument("--bmc", required=True, help="Redfish service URL, e.g. https://10.0.0.5")
    inv.add_argument("--username", help="BMC user (omit for a BMC without authentication)")
    inv.add_argument(
        "--password-env",
        metavar="VAR",
        help="environment variable holding the password (never pass the password itself)",
    )
    inv.add_argument("--auth", choices=["auto", "basic", "session"], default="auto",
                     help="Redfish authentication: a session, basic auth, or auto (session, else basic)")
    tls = inv.add_mutually_exclusive_group()
    tls.add_argument("--insecure", action="store_true", help="do not verify the BMC's TLS certificate")
    tls.add_argument("--ca-bundle", help="PEM CA bundle to verify the BMC's certificate with")
    inv.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    add_output_option(inv, legacy_format={"json": "json", "table": "text"})
    inv.set_defaults(func=inventory_command)
    val = sub.add_parser(
        "validate-site", help="check a site definition (YAML/JSON) before starting a discovery"
    )
    val.add_argument("file", type=Path, help="site definition (YAML/JSON)")
    val.set_defaults(func=validate_command)
    disc = sub.add_parser("discover", help="start (or join) the discovery workflow of a site on Temporal")
    disc.add_argument("file", type=Path, help="site definition (YAML/JSON)")
    disc.add_argument("--concurrency", type=int, default=16, help="BMCs read at the same time (default 16)")
    disc.add_argument("--task-queue", default="redfish", help="the Redfish workers' task queue (default redfish)")
    disc.add_argument("--no-wait", action="store_true", help="print the workflow id and return")
    disc.set_defaults(func=discover_command)
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])


async def _with_progress(handle: Any, display: Any = None) -> DiscoverResult:
    """The result, showing BMCs done of total and problems so far (the workflow's `status` query) on
    stderr meanwhile, and the final numbers from the result."""
    import asyncio

    from workers.cli.progress import DiscoveryDisplay

    display = display or DiscoveryDisplay()
    last = DiscoveryProgress()
    result_task = asyncio.ensure_future(handle.result())
    try:
        while not result_task.done():
            try:
                last = await handle.query("status", result_type=DiscoveryProgress)
                display.update(last)
            except Exception:
                pass  # not started yet, or a worker of an older version: the result still comes
            await asyncio.wait([result_task], timeout=1.0)
        result: DiscoverResult = result_task.result()
        final = final_progress(result, last)
        display.update(final)
    finally:
        display.stop()
    print(f"discovery {DiscoveryDisplay.text(final)}", file=sys.stderr, flush=True)
    return result


def final_progress(result: DiscoverResult, last: DiscoveryProgress) -> DiscoveryProgress:
    """The final numbers, from the result (the status query may not have been seen at the end)."""
    systems = max(last.systems_total, len(result.servers))
    return DiscoveryProgress(
        state="done",
        bmcs_total=result.bmcs_total,
        bmcs_done=result.bmcs_total,
        systems_total=systems,
        systems_done=systems,
        problems=len(result.problems),
        servers=len(result.servers),
    )


def inventory_command(args: argparse.Namespace) -> int:
    from activities.redfish.inventory import read_bmc_inventory

    creds = None
    if args.username:
        if not args.password_env:
            print(
                "error: --username needs --password-env VAR (the password is read from $VAR)", file=sys.stderr
            )
            return 2
        if args.password_env not in os.environ:
            print(f"error: environment variable {args.password_env} is not set", file=sys.stderr)
            return 2
        creds = BmcCredentials(
            username=args.username, password_ref=f"env:{args.password_env}", auth=args.auth
        )
    try:
        conn = BmcConnection(
            url=args.bmc,
            name=args.bmc,
            credentials=creds,
            tls=TlsOptions(insecure=args.insecure, ca_bundle=args.ca_bundle),
            timeout_s=args.timeout,
        )
    except ValueError as exc:  # pydantic's ValidationError too: one line per flag, not its block
        from workers.cli.errors import describe

        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    result = read_bmc_inventory(conn)
    emit(args, result, lambda: render_table(result))
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    return 0


def _fmt(v: Any) -> str:
    return "unknown" if v is None else str(v)


def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 2**30:.1f} GiB"


def render_system(s: SystemInventory) -> list[str]:
    lines = [
        f"System {s.id} ({s.system_path})",
        f"  identity       {s.identity}",
        f"  manufacturer   {_fmt(s.manufacturer)}   model {_fmt(s.model)}   sku {_fmt(s.sku)}",
        f"  serial         {_fmt(s.serial)}   uuid {_fmt(s.uuid)}",
        f"  bios version   {_fmt(s.bios_version)}   power {_fmt(s.power_state)}",
        f"  processors     {_fmt(s.processor_count)} sockets, {_fmt(s.core_count)} cores, "
        f"{_fmt(s.logical_processor_count)} logical processors ({_fmt(s.processor_model)})",
        f"  memory         {_fmt(s.memory_gib)} GiB in {len(s.memory_modules or [])} module(s)",
    ]
    for n in s.nics or []:
        lines.append(f"  nic {n.id:<14} {_fmt(n.mac):<18} {_fmt(n.link_status):<9} {_fmt(n.speed_mbps)} Mbps")
    for c in s.storage or []:
        lines.append(f"  storage {c.id} {_fmt(c.name)}")
        for d in c.drives:
            lines.append(f"    drive {d.id:<14} {_gib(d.capacity_bytes):<12} {_fmt(d.model)}")
    for f in s.firmware or []:
        lines.append(f"  firmware {f.id:<12} {_fmt(f.version)}  ({_fmt(f.name)})")
    if s.bios_attributes is not None:
        lines.append(
            f"  bios attributes {len(s.bios_attributes)}: "
            + ", ".join(f"{k}={v}" for k, v in sorted(s.bios_attributes.items())[:8])
            + (" ..." if len(s.bios_attributes) > 8 else "")
        )
    for v in s.virtual_media or []:
        lines.append(
            f"  virtual media {v.id:<8} {','.join(v.media_types):<14} inserted={_fmt(v.inserted)} "
            f"{v.image or ''}"
        )
    for part, why in sorted(s.unknown.items()):
        lines.append(f"  unknown {part}: {why}")
    return lines


def render_table(inv: BmcInventory) -> str:
    lines = [f"BMC {inv.bmc_url}: {len(inv.systems)} system(s)"]
    if inv.error:
        lines.append(f"  error ({inv.error_type}): {inv.error}")
    for s in inv.systems:
        lines.extend(render_system(s))
    return "\n".join(lines)


def dump(inv: BmcInventory) -> str:
    return json.dumps(inv.model_dump(), indent=2)


def load_site(path: Path) -> tuple[SiteDefinition | None, list[str]]:
    """A site definition from YAML or JSON (a bare site, or `{site: ...}`), with every problem found."""
    from pydantic import ValidationError

    from definitions.yamlfiles import YamlProblem, load_yaml_file

    try:
        data = load_yaml_file(path)
    except (OSError, YamlProblem) as exc:
        return None, [f"{path}: {exc}"]
    if isinstance(data, dict) and "site" in data and isinstance(data["site"], dict):
        data = data["site"]
    try:
        site = SiteDefinition.model_validate(data)
    except ValidationError as exc:
        return None, [f"{'.'.join(map(str, e['loc'])) or 'site'}: {e['msg']}" for e in exc.errors()]
    return site, site.problems()


def valid_site(path: Path) -> SiteDefinition | None:
    """The site file, or None when it is not valid (every problem printed to stderr)."""
    site, problems = load_site(path)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return None if problems else site


def validate_command(args: argparse.Namespace) -> int:
    site = valid_site(args.file)
    if site is None:
        return 1
    conns = site.connections()
    print(f"site {site.name}: {len(conns)} BMC(s), valid")
    return 0


def discover_command(args: argparse.Namespace) -> int:
    import asyncio

    from temporalio.common import WorkflowIDConflictPolicy

    from workers.config import ConfigError, connect

    site = valid_site(args.file)
    if site is None:
        return 1

    async def run() -> int:
        client = await connect()
        wid = f"server-discover-{site.name}"
        handle = await client.start_workflow(
            "ServerDiscoveryWorkflow",
            DiscoverInput(site=site, concurrency=args.concurrency),
            id=wid,
            task_queue=args.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            result_type=DiscoverResult,
        )
        print(f"discovery workflow {wid} (run {handle.result_run_id})")
        if args.no_wait:
            return 0
        result: DiscoverResult = await _with_progress(handle)
        print(result.model_dump_json(indent=2))
        return 0 if not result.problems else 1  # problems are listed in the result

    from temporalio.client import WorkflowFailureError
    from temporalio.service import RPCError

    from workers.cli.common import fail, rpc_fail

    try:
        return asyncio.run(run())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WorkflowFailureError as exc:
        return fail(f"discovery of {site.name} failed: {getattr(exc.cause, 'message', exc.cause)}")
    except RPCError as exc:
        return rpc_fail(exc, f"cannot discover {site.name}")
