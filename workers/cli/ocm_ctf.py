"""`apeiro ocm transfer` with a Common Transport Format archive on one side (air-gapped transport).

A side is an archive when it is written ``ctf:PATH``, or is a path (``/...``, ``./...``, ``~/...``)
or ends in ``.tar``; anything else is a registry URL. Registry -> archive starts
``CtfExportWorkflow``, archive -> registry ``CtfImportWorkflow`` (both on queue ``ocm``; the path is
on the ``ocm`` worker's file system).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workers.cli.ocm_args import UsageError, component_refs, verify_specs


def is_archive(side: str) -> bool:
    return side.startswith(("ctf:", "/", "./", "../", "~")) or side.endswith(".tar")


def archive_path(side: str) -> str:
    return str(Path(side.removeprefix("ctf:")).expanduser().resolve())


def build_ctf_input(args: argparse.Namespace) -> tuple[str, BaseModel]:
    """(workflow type, input) for an archive transfer; raises UsageError or ValidationError."""
    from definitions.ocm import RepositorySpec, TransferMode
    from definitions.ocm_ctf import CtfExportInput, CtfFormat, CtfImportInput

    src_archive, dst_archive = is_archive(args.source), is_archive(args.target)
    if src_archive == dst_archive:
        raise UsageError("give one registry URL and one archive (ctf:PATH, a path, or a .tar file)")
    comps = component_refs(args.components)
    verify = verify_specs(args.verify)
    if args.sign:
        raise UsageError("--sign applies to registry-to-registry transfers; sign before exporting")
    if dst_archive:
        path = archive_path(args.target)
        fmt = args.format or (CtfFormat.TAR if path.endswith(".tar") else CtfFormat.DIRECTORY)
        repo = RepositorySpec(
            url=args.source,
            username_ref=args.source_username_ref,
            password_ref=args.source_password_ref,
            ca_bundle=args.source_ca,
        )
        mode = TransferMode.BY_REFERENCE if args.by_reference else TransferMode.BY_VALUE
        return "CtfExportWorkflow", CtfExportInput(
            source=repo,
            archive=path,
            format=fmt,
            components=comps,
            mode=mode,
            recursive=not args.no_recursive,
            verify=verify,
        )
    repo = RepositorySpec(
        url=args.target,
        username_ref=args.target_username_ref,
        password_ref=args.target_password_ref,
        ca_bundle=args.target_ca,
    )
    return "CtfImportWorkflow", CtfImportInput(
        archive=archive_path(args.source), target=repo, components=comps, verify=verify, existing=args.existing
    )


def cmd_ctf_transfer(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    try:
        wf, inp = build_ctf_input(args)
    except (UsageError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    wid = args.workflow_id or f"{'ctf-export' if wf == 'CtfExportWorkflow' else 'ctf-import'}-{uuid.uuid4().hex[:10]}"
    return asyncio.run(_run(wf, inp, wid, args.no_wait))


async def _run(wf: str, inp: BaseModel, workflow_id: str, no_wait: bool) -> int:
    from temporalio.client import WorkflowFailureError

    from definitions import queues
    from workers.cli.ocm import _follow
    from workers.config import ConfigError, connect

    try:
        client = await connect()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    handle = await client.start_workflow(wf, inp, id=workflow_id, task_queue=queues.OCM)
    print(f"started {workflow_id}", file=sys.stderr)
    if no_wait:
        print(workflow_id)
        return 0
    follower = asyncio.create_task(_follow(handle))
    try:
        result: Any = await handle.result()
    except WorkflowFailureError as exc:
        cause: Any = exc.cause
        while getattr(cause, "cause", None) is not None:
            cause = getattr(cause, "cause", None)
        print(f"error: transfer failed: {cause}", file=sys.stderr)
        return 1
    finally:
        follower.cancel()
    print(json.dumps(result, indent=2, default=str))
    return 0
