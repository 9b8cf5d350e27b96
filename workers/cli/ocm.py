"""`apeiro ocm ...`: digest, sign and verify descriptors locally; start and follow a transport.

``digest``, ``sign`` and ``verify`` need no Temporal: they are for operators and for scripts (exit 0
when valid, 1 with the reason on stderr when not, 2 on usage errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from definitions.secrets import secret_ref_arg
from workers.cli.ocm_args import UsageError as _UsageError
from workers.cli.ocm_args import component_refs, key_ref, verify_specs


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ocm", help="OCM component descriptors: digest, sign, verify, transfer")
    sub = p.add_subparsers(dest="ocm_command", metavar="SUBCOMMAND")

    from activities.ocm.normalise import ALGORITHMS, DEFAULT_ALGORITHM
    from activities.ocm.signing import ALGORITHMS as SIG_ALGS
    from activities.ocm.signing import DEFAULT_ALGORITHM as SIG_DEFAULT

    d = sub.add_parser("digest", help="print the hex SHA-256 of the normalised descriptor")
    d.add_argument("file", type=Path, help="a component descriptor (YAML/JSON)")
    d.add_argument(
        "--normalisation",
        "--normalization",
        default=DEFAULT_ALGORITHM,
        help=f"one of {', '.join(ALGORITHMS)} (default {DEFAULT_ALGORITHM})",
    )
    d.add_argument("--show", action="store_true", help="print the normalised bytes instead of the digest")
    d.set_defaults(func=cmd_digest)

    s = sub.add_parser("sign", help="add (or replace) a signature")
    s.add_argument("file", type=Path, help="the component descriptor to sign (YAML/JSON)")
    s.add_argument("--private-key", type=Path, required=True, help="PEM RSA private key")
    s.add_argument("--name", required=True, help="signature name")
    s.add_argument("--algorithm", default=SIG_DEFAULT, choices=SIG_ALGS, help=f"default {SIG_DEFAULT}")
    s.add_argument("--normalisation", "--normalization", default=DEFAULT_ALGORITHM, choices=ALGORITHMS,
                   help=f"descriptor normalisation (default {DEFAULT_ALGORITHM})")
    s.add_argument("--certificate", type=Path, help="PEM certificate chain of the signer (PEM signature)")
    s.add_argument("--root-certs", type=Path, help="trusted roots to check the certificate chain against")
    s.add_argument("--issuer", help="expected signer name, e.g. 'CN=release-signer,O=Acme'")
    s.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    s.set_defaults(func=cmd_sign)

    v = sub.add_parser("verify", help="verify a signature; exit 0 when valid, 1 with the reason when not")
    v.add_argument("file", type=Path, help="the signed component descriptor (YAML/JSON)")
    v.add_argument("--public-key", type=Path, help="PEM public key or certificate")
    v.add_argument("--name", help="signature name (needed when there are several)")
    v.add_argument("--root-certs", type=Path, help="trusted roots for signatures with a certificate chain")
    v.add_argument("--issuer", help="expected signer name")
    v.add_argument(
        "--strict",
        action="store_true",
        help="reject signatures that only an earlier form of their normalisation reproduces",
    )
    v.add_argument(
        "--blobs",
        type=Path,
        help="directory of local blobs (a component archive's blobs/); each local blob's content is checked "
        "against its resource digest",
    )
    v.set_defaults(func=cmd_verify)

    t = sub.add_parser(
        "transfer",
        help="start the component transport workflow and follow it (registry or CTF archive on either side)",
    )
    t.add_argument("source", help="source repository URL (http://127.0.0.1:5000/ocm) or CTF archive (ctf:PATH)")
    t.add_argument("target", help="target repository URL or CTF archive (ctf:PATH, a path, or FILE.tar)")
    t.add_argument("components", nargs="*", help="NAME:VERSION (at least one, except when importing an archive)")
    t.add_argument("--format", choices=["directory", "tar"], help="archive format when exporting (default: by suffix)")
    t.add_argument("--by-reference", action="store_true", help="copy descriptors only (default: by value)")
    t.add_argument("--no-recursive", action="store_true", help="do not follow component references")
    t.add_argument(
        "--verify",
        action="append",
        default=[],
        metavar="NAME=KEYREF",
        help="verify signature NAME at the source with public key reference KEYREF",
    )
    t.add_argument("--sign", metavar="NAME=KEYREF", help="sign at the target with private key reference KEYREF")
    t.add_argument("--sign-public-key", metavar="KEYREF", help="public key reference to verify at the target")
    t.add_argument("--existing", choices=["skip-identical", "overwrite", "fail"], default="skip-identical",
                   help="a version already at the target: skip when identical (default), overwrite, or fail")
    t.add_argument("--source-username", help="registry user name, as it is (not a secret)")
    t.add_argument(
        "--source-username-ref", type=secret_ref_arg, help="user name reference (env:/file:/k8s:); or --source-username"
    )
    t.add_argument("--source-password-ref", type=secret_ref_arg, help="secret reference (env:/file:/k8s:)")
    t.add_argument("--target-username", help="registry user name, as it is (not a secret)")
    t.add_argument(
        "--target-username-ref", type=secret_ref_arg, help="user name reference (env:/file:/k8s:); or --target-username"
    )
    t.add_argument("--target-password-ref", type=secret_ref_arg, help="secret reference (env:/file:/k8s:)")
    t.add_argument("--source-ca", metavar="REF", help="CA bundle to verify the source registry's TLS with")
    t.add_argument("--target-ca", metavar="REF", help="CA bundle to verify the target registry's TLS with")
    t.add_argument("--workflow-id", help="default: transport-<random>")
    t.add_argument("--no-wait", action="store_true", help="start and print the workflow id only")
    t.set_defaults(func=cmd_transfer)

    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def _fail(msg: str, code: int = 1) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror}") from None


def cmd_digest(args: argparse.Namespace) -> int:
    from activities.ocm import normalise as norm
    from activities.ocm.errors import OCMError

    try:
        data = norm.load_descriptor_data(_read(args.file))
        if args.show:
            sys.stdout.write(norm.normalise(data, args.normalisation).decode() + "\n")
        else:
            print(norm.descriptor_digest(data, args.normalisation))
    except (OCMError, _UsageError) as exc:
        return _fail(str(exc), 2 if isinstance(exc, _UsageError) else 1)
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from activities.ocm import normalise as norm
    from activities.ocm import signing as sg
    from activities.ocm.errors import OCMError

    try:
        data = norm.load_descriptor_data(_read(args.file))
        key = sg.load_private_key(_read(args.private_key))
        chain = sg.load_certificates(_read(args.certificate)) if args.certificate else []
        if args.certificate and not chain:
            raise _UsageError(f"{args.certificate} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        roots = sg.load_certificates(_read(args.root_certs)) if args.root_certs else []
        signed = sg.sign_descriptor(
            data,
            name=args.name,
            private_key=key,
            algorithm=args.algorithm,
            normalisation=args.normalisation,
            chain=chain,
            roots=roots,
            issuer=args.issuer,
        )
    except _UsageError as exc:
        return _fail(str(exc), 2)
    except OCMError as exc:
        return _fail(str(exc))
    text = norm.dump_descriptor(signed)
    if args.output:
        try:
            args.output.write_text(text)
        except OSError as exc:
            return _fail(f"cannot write {args.output}: {exc.strerror}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from activities.ocm import normalise as norm
    from activities.ocm import signing as sg
    from activities.ocm.errors import OCMError

    try:
        data = norm.load_descriptor_data(_read(args.file))
        key = sg.load_public_key(_read(args.public_key)) if args.public_key else None
        roots = sg.load_certificates(_read(args.root_certs)) if args.root_certs else []
    except _UsageError as exc:
        return _fail(str(exc), 2)
    except OCMError as exc:
        return _fail(str(exc))
    if key is None and not roots:
        return _fail("give --public-key, or --root-certs for a signature with a certificate chain", 2)
    res = sg.verify_descriptor(
        data, name=args.name, public_key=key, roots=roots, issuer=args.issuer, strict=args.strict
    )
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not res.valid:
        return _fail(f"INVALID: {res.reason}")
    if args.blobs is not None:
        problem = check_local_blobs(data, args.blobs)
        if problem:
            return _fail(f"INVALID: {problem}")
    print(f"valid: signature {res.name!r}, digest {res.digest}")
    return 0


def check_local_blobs(data: dict[str, Any], blobs: Path) -> str | None:
    """Stream every local blob from ``blobs`` and compare it with its genericBlobDigest/v1."""
    import hashlib

    for res in data["component"].get("resources") or []:
        access, digest = res.get("access") or {}, res.get("digest") or {}
        if access.get("type") != "localBlob" or digest.get("normalisationAlgorithm") != "genericBlobDigest/v1":
            continue
        ref = str(access.get("localReference", ""))
        path = next((p for p in (blobs / ref, blobs / ref.replace(":", ".", 1)) if p.is_file()), None)
        if path is None:
            return f"resource {res.get('name')!r}: local blob {ref} not found in {blobs}"
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                h.update(chunk)
        if h.hexdigest() != str(digest.get("value", "")).lower():
            return (
                f"resource {res.get('name')!r}: blob digest mismatch: content is sha256:{h.hexdigest()}, "
                f"the signed descriptor records {digest.get('value')}"
            )
    return None


def _repository(args: argparse.Namespace, side: str) -> Any:
    """The ``--source*`` or ``--target*`` options (``side``) as the transport's RepositorySpec."""
    from definitions.ocm import RepositorySpec

    return RepositorySpec(
        url=getattr(args, side),
        username=getattr(args, f"{side}_username"),
        username_ref=getattr(args, f"{side}_username_ref"),
        password_ref=getattr(args, f"{side}_password_ref"),
        ca_bundle=getattr(args, f"{side}_ca"),
    )


def build_transport_input(args: argparse.Namespace) -> Any:
    from definitions.ocm import SigningSpec, TransferMode, TransportInput

    comps = component_refs(args.components)
    verify = verify_specs(args.verify)
    sign = None
    if args.sign:
        n, r = key_ref(args.sign, "--sign")
        sign = SigningSpec(name=n, private_key_ref=r, public_key_ref=args.sign_public_key)
    return TransportInput(
        source=_repository(args, "source"),
        target=_repository(args, "target"),
        components=comps,
        mode=TransferMode.BY_REFERENCE if args.by_reference else TransferMode.BY_VALUE,
        recursive=not args.no_recursive,
        verify=verify,
        sign=sign,
        existing=args.existing,
    )


def cmd_transfer(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from workers.cli.ocm_ctf import cmd_ctf_transfer, is_archive

    if is_archive(args.source) or is_archive(args.target):
        return cmd_ctf_transfer(args)

    try:
        inp = build_transport_input(args)
    except (_UsageError, ValidationError) as exc:
        return _fail(str(exc), 2)
    return asyncio.run(_transfer(inp, args.workflow_id or f"transport-{uuid.uuid4().hex[:10]}", args.no_wait))


async def _transfer(inp: Any, workflow_id: str, no_wait: bool) -> int:
    from temporalio.client import WorkflowFailureError

    from definitions import queues
    from definitions.ocm import TransportResult
    from workers.config import ConfigError, connect

    try:
        client = await connect()
    except ConfigError as exc:
        return _fail(str(exc))
    handle = await client.start_workflow(
        "ComponentTransportWorkflow", inp, id=workflow_id, task_queue=queues.OCM, result_type=TransportResult
    )
    print(f"started {workflow_id}", file=sys.stderr)
    if no_wait:
        print(workflow_id)
        return 0
    follower = asyncio.create_task(_follow(handle, client=client))
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        cause: Any = exc.cause
        while getattr(cause, "cause", None) is not None:
            cause = getattr(cause, "cause", None)
        return _fail(f"transport failed: {cause}")
    finally:
        follower.cancel()
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    return 0


async def _follow(handle: Any, every: float = 1.0, client: Any = None) -> None:
    """Progress on stderr until cancelled: the workflow's `progress` query (blobs done of total) and,
    per blob being copied, bytes sent and MiB/s from the copy activity's heartbeat details."""
    from workers.cli.progress import TransferDisplay

    display = TransferDisplay()
    try:
        while True:
            try:
                p = await handle.query("progress")
            except Exception:  # not started yet, or finished: the result tells the rest
                p = None
            blobs: dict[str, int] = {}
            if client is not None:
                blobs = await _blob_offsets(client, handle)
            display.update(p, blobs)
            await asyncio.sleep(every)
    finally:
        display.stop()


async def _blob_offsets(client: Any, handle: Any) -> dict[str, int]:
    """activity id -> bytes uploaded so far, for the copy activities in flight (heartbeat details)."""
    try:
        description = await handle.describe()
    except Exception:
        return {}
    out: dict[str, int] = {}
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name != "ocm.copy_blob" or not pending.heartbeat_details.payloads:
            continue
        try:
            [details] = await client.data_converter.decode(list(pending.heartbeat_details.payloads))
        except Exception:
            continue
        if isinstance(details, dict) and isinstance(details.get("offset"), int):
            out[pending.activity_id] = details["offset"]
    return out
