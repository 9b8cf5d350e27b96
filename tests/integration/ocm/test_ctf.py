"""Air-gapped transport: registry -> CTF archive (directory and tar) -> second registry.

Real registries (Debian docker-registry), the dev server, the example component signed at the source.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.ocm import normalise as norm
from activities.ocm import signing as sg
from activities.ocm.ctf_export import ACTIVITIES as EXPORT
from activities.ocm.ctf_format import INDEX_FILE
from activities.ocm.ctf_import import ACTIVITIES as IMPORT
from activities.ocm.layout import RepoBase, read_version, version_exists
from activities.ocm.transport import ACTIVITIES as TRANSPORT
from definitions.ocm import ComponentVersionRef, RepositorySpec, SigningSpec, TransportInput, VerifySpec
from definitions.ocm_ctf import CtfExportInput, CtfExportResult, CtfFormat, CtfImportInput, CtfImportResult
from landscape import ocm_example as ex
from tests.integration.ocm.conftest import Registries
from tests.integration.ocm.test_transport import site_spec
from workers.worker import workflow_runner
from workflows.ctf import CtfExportWorkflow, CtfImportWorkflow
from workflows.transport import ComponentTransportWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ocm-registries")]


@pytest.fixture
async def ctf_worker(dev_client: Client, task_queue: str) -> AsyncIterator[str]:
    async with Worker(
        dev_client,
        task_queue=task_queue,
        workflows=[ComponentTransportWorkflow, CtfExportWorkflow, CtfImportWorkflow],
        activities=[*TRANSPORT, *EXPORT, *IMPORT],
        workflow_runner=workflow_runner(),
    ):
        yield task_queue


def _verify(reg: Registries) -> list[VerifySpec]:
    return [VerifySpec(name="site", public_key_ref=f"file:{reg.keys / 'site.pub'}")]


@pytest.fixture
async def signed_source(dev_client: Client, ctf_worker: str, registries: Registries, example: str) -> str:
    """The example component, signed ("site"), in a fresh repository of the source registry."""
    url = f"{registries.source.url}/signed-{uuid.uuid4().hex[:6]}"
    await dev_client.execute_workflow(
        "ComponentTransportWorkflow",
        TransportInput(
            source=RepositorySpec(url=example),
            target=RepositorySpec(url=url),
            components=[ComponentVersionRef(name=ex.MAIN, version=ex.VERSION)],
            sign=SigningSpec(name="site", private_key_ref=f"file:{registries.keys / 'site.pem'}"),
        ),
        id=f"sign-{uuid.uuid4().hex[:8]}",
        task_queue=ctf_worker,
    )
    return url


async def export(client: Client, queue: str, reg: Registries, source: str, archive: Path, fmt: CtfFormat) -> Any:
    return await client.execute_workflow(
        "CtfExportWorkflow",
        CtfExportInput(
            source=RepositorySpec(url=source),
            archive=str(archive),
            format=fmt,
            components=[ComponentVersionRef(name=ex.MAIN, version=ex.VERSION)],
            verify=_verify(reg),
        ),
        id=f"ctf-x-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=CtfExportResult,
    )


async def import_(client: Client, queue: str, reg: Registries, archive: Path, target: str) -> CtfImportResult:
    return await client.execute_workflow(
        "CtfImportWorkflow",
        CtfImportInput(archive=str(archive), target=site_spec(reg, target), verify=_verify(reg), chunk_size=65536),
        id=f"ctf-i-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=CtfImportResult,
    )


async def import_fails(client: Client, queue: str, reg: Registries, archive: Path, target: str) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await import_(client, queue, reg, archive, target)
    cause: Any = info.value.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    assert isinstance(cause, ApplicationError), info.value
    return cause


async def assert_same(reg: Registries, source: str, target: str) -> None:
    """Identical digests on both sides and a valid signature at the target."""
    src_base, dst_base = RepoBase.parse(source), RepoBase.parse(target)
    pub = sg.load_public_key((reg.keys / "site.pub").read_bytes())
    async with reg.source_client() as src, reg.site_client() as dst:
        for name in (ex.BASE, ex.MAIN):
            a = await read_version(src, src_base, name, ex.VERSION)
            b = await read_version(dst, dst_base, name, ex.VERSION)
            assert norm.descriptor_digest(a.descriptor) == norm.descriptor_digest(b.descriptor)
            assert [lay["digest"] for lay in a.blob_layers] == [lay["digest"] for lay in b.blob_layers]
            assert [r.get("digest") for r in a.descriptor["component"]["resources"]] == [
                r.get("digest") for r in b.descriptor["component"]["resources"]
            ]
            if name == ex.BASE:  # nothing to rewrite: the very manifest bytes
                assert a.manifest_digest == b.manifest_digest
        got = await read_version(dst, dst_base, ex.MAIN, ex.VERSION)
        assert sg.verify_descriptor(got.descriptor, name="site", public_key=pub, strict=True).valid
        image = got.descriptor["component"]["resources"][0]
        assert image["access"]["imageReference"].startswith(f"{dst_base.host}/{dst_base.prefix}/")
        src_raw, _, sd = await src.get_manifest(f"{src_base.prefix}/images/edge-app", ex.VERSION)
        dst_raw, _, dd = await dst.get_manifest(f"{dst_base.prefix}/images/edge-app", ex.VERSION)
        assert src_raw == dst_raw and sd == dd == "sha256:" + image["digest"]["value"]


async def test_directory_round_trip_and_resumed_export(
    dev_client: Client, ctf_worker: str, registries: Registries, signed_source: str, target_url: str, tmp_path: Path
) -> None:
    archive = tmp_path / "edge-app.ctf"
    res = await export(dev_client, ctf_worker, registries, signed_source, archive, CtfFormat.DIRECTORY)
    assert [v.name for v in res.versions] == [ex.BASE, ex.MAIN] and res.blobs >= 5
    index = json.loads((archive / INDEX_FILE).read_text())
    assert index["schemaVersion"] == 1
    repos = {a["repository"] for a in index["artifacts"]}
    assert repos == {f"component-descriptors/{ex.MAIN}", f"component-descriptors/{ex.BASE}", "images/edge-app"}
    assert all((archive / "blobs" / a["digest"].replace(":", ".")).is_file() for a in index["artifacts"])

    # A crash mid-export: no index yet, one blob half written. A re-run finishes only what is missing.
    (archive / INDEX_FILE).unlink()
    biggest = max((archive / "blobs").iterdir(), key=lambda p: p.stat().st_size)
    data = biggest.read_bytes()
    biggest.unlink()
    biggest.with_name(biggest.name + ".part").write_bytes(data[: len(data) // 2])
    again = await export(dev_client, ctf_worker, registries, signed_source, archive, CtfFormat.DIRECTORY)
    assert biggest.read_bytes() == data and json.loads((archive / INDEX_FILE).read_text()) == index
    assert again.bytes_written > 0
    # Exporting to a complete archive of the same content is a no-op.
    same = await export(dev_client, ctf_worker, registries, signed_source, archive, CtfFormat.DIRECTORY)
    assert same.bytes_written == 0

    result = await import_(dev_client, ctf_worker, registries, archive, target_url)
    assert [(v.name, v.outcome) for v in result.versions] == [(ex.BASE, "imported"), (ex.MAIN, "imported")]
    assert result.versions[1].signatures_verified == ["site"]
    await assert_same(registries, signed_source, target_url)
    rerun = await import_(dev_client, ctf_worker, registries, archive, target_url)
    assert [v.outcome for v in rerun.versions] == ["skipped", "skipped"] and rerun.bytes_sent == 0


async def test_tar_round_trip(
    dev_client: Client, ctf_worker: str, registries: Registries, signed_source: str, target_url: str, tmp_path: Path
) -> None:
    archive = tmp_path / "edge-app.tar"
    await export(dev_client, ctf_worker, registries, signed_source, archive, CtfFormat.TAR)
    assert archive.is_file() and not Path(str(archive) + ".staging").exists()
    import tarfile

    with tarfile.open(archive) as tf:
        assert tf.getmembers()[0].name == INDEX_FILE
    await import_(dev_client, ctf_worker, registries, archive, target_url)
    await assert_same(registries, signed_source, target_url)


async def _nothing_at(reg: Registries, target: str) -> None:
    async with reg.site_client() as dst:
        for name in (ex.BASE, ex.MAIN):
            assert await version_exists(dst, RepoBase.parse(target), name, ex.VERSION) is None


async def test_tampered_truncated_and_unknown_version_rejected(
    dev_client: Client, ctf_worker: str, registries: Registries, signed_source: str, target_url: str, tmp_path: Path
) -> None:
    good = tmp_path / "good"
    await export(dev_client, ctf_worker, registries, signed_source, good, CtfFormat.DIRECTORY)
    index = json.loads((good / INDEX_FILE).read_text())

    # Tampered: one byte of a local blob changed.
    tampered = tmp_path / "tampered"
    shutil.copytree(good, tampered)
    victim = max((tampered / "blobs").iterdir(), key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    err = await import_fails(dev_client, ctf_worker, registries, tampered, target_url)
    assert err.type == "DigestMismatch" and "tampered" in str(err)

    await _nothing_at(registries, target_url)

    # Wrong key: the archive is intact but not signed by whom we trust.
    with pytest.raises(WorkflowFailureError):
        await dev_client.execute_workflow(
            "CtfImportWorkflow",
            CtfImportInput(
                archive=str(good),
                target=site_spec(registries, target_url),
                verify=[VerifySpec(name="site", public_key_ref=f"file:{registries.keys / 'other.pub'}")],
            ),
            id=f"ctf-i-{uuid.uuid4().hex[:8]}",
            task_queue=ctf_worker,
        )

    # Truncated tar.
    tar = tmp_path / "cut.tar"
    await export(dev_client, ctf_worker, registries, signed_source, tar, CtfFormat.TAR)
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) * 2 // 3])
    err = await import_fails(dev_client, ctf_worker, registries, tar, target_url)
    assert err.type == "ArchiveInvalid" and "truncated" in str(err)

    # Unknown version.
    future = tmp_path / "future"
    shutil.copytree(good, future)
    (future / INDEX_FILE).write_text(json.dumps({**index, "schemaVersion": 2}))
    err = await import_fails(dev_client, ctf_worker, registries, future, target_url)
    assert err.type == "ArchiveInvalid" and "schemaVersion 2 is not supported" in str(err)

    # An unfinished export (no index) is named as such.
    (future / INDEX_FILE).unlink()
    err = await import_fails(dev_client, ctf_worker, registries, future, target_url)
    assert "did not finish" in str(err)
    await _nothing_at(registries, target_url)
