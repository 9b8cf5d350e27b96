"""ocm.prepare_version and ocm.finalise_version against the real registries: a prepared version is
not visible at the target until finalised, finalising a prepared version writes only its manifest, and
a prepared descriptor that vanished meanwhile (a registry's garbage collection during a long copy) is
written again instead of failing the transport."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ocm import signing as sg
from activities.ocm.errors import ComponentNotFound
from activities.ocm.finalise import finalise_version, prepare_version
from activities.ocm.layout import RepoBase, read_version
from activities.ocm.transport import copy_blob_activity, copy_manifests, plan_transport
from definitions.ocm import BlobCopyInput, FinaliseInput, ManifestCopyInput, TransportedVersion
from landscape import ocm_example as ex
from tests.integration.ocm.conftest import Registries
from tests.integration.ocm.test_transport import transport_input

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ocm-registries")]


async def run(fn: Any, arg: Any) -> Any:
    return await ActivityEnvironment().run(fn, arg)


async def copied(registries: Registries, example: str, target_url: str) -> list[FinaliseInput]:
    """The example's plan carried out up to finalising: every blob and manifest at the target."""
    inp = transport_input(registries, example, target_url)
    plan = await run(plan_transport, inp)
    out = []
    for vp in plan.versions:
        for b in vp.blobs:
            await run(copy_blob_activity, BlobCopyInput(source=inp.source, target=inp.target, blob=b))
        if vp.manifests:
            await run(copy_manifests, ManifestCopyInput(source=inp.source, target=inp.target, manifests=vp.manifests))
        out.append(FinaliseInput(source=inp.source, target=inp.target, plan=vp, sign=inp.sign))
    return out


async def test_prepared_version_appears_only_when_finalised(
    registries: Registries, example: str, target_url: str
) -> None:
    versions = await copied(registries, example, target_url)
    base = RepoBase.parse(target_url)
    results: list[TransportedVersion] = []
    for fin in versions:
        prepared = await run(prepare_version, fin)
        again = await run(prepare_version, fin)  # a retried attempt: a new signature, same shape
        assert again.blob_layers == prepared.blob_layers and again.config["size"] > 0
        async with registries.site_client() as site:
            with pytest.raises(ComponentNotFound):
                await read_version(site, base, fin.plan.name, fin.plan.version)
            assert await site.blob_size(base.component_repo(fin.plan.name), prepared.descriptor_layer["digest"])
        results.append(await run(finalise_version, fin.model_copy(update={"prepared": prepared})))
    main = results[-1]
    assert [r.name for r in results][-1] == ex.MAIN and main.outcome == "copied" and main.signature_digest
    async with registries.site_client() as site:
        got = await read_version(site, base, ex.MAIN, ex.VERSION)
    assert got.manifest_digest == main.manifest_digest
    assert got.manifest["layers"][0]["digest"] == prepared.descriptor_layer["digest"]
    pub = sg.load_public_key((registries.keys / "site.pub").read_bytes())
    assert sg.verify_descriptor(got.descriptor, name="site", public_key=pub, strict=True).valid
    # Finalising again (an attempt whose answer was lost) writes the same manifest.
    repeat = await run(finalise_version, versions[-1].model_copy(update={"prepared": prepared}))
    assert repeat.manifest_digest == main.manifest_digest


async def test_prepared_descriptor_gone_is_written_again(registries: Registries, example: str, target_url: str) -> None:
    versions = await copied(registries, example, target_url)
    base = RepoBase.parse(target_url)
    for fin in versions:
        prepared = await run(prepare_version, fin)
        repo = base.component_repo(fin.plan.name)
        async with registries.site_client() as site:  # as a registry's garbage collection would
            for digest in (prepared.descriptor_layer["digest"], prepared.config["digest"]):
                await site.request("DELETE", f"/v2/{repo}/blobs/{digest}", scope=site._scope(repo, True), ok=(202,))
                assert await site.blob_size(repo, digest) is None
        done = await run(finalise_version, fin.model_copy(update={"prepared": prepared}))
        assert done.signature_digest and done.manifest_digest
        async with registries.site_client() as site:
            got = await read_version(site, base, fin.plan.name, fin.plan.version)
        assert got.manifest_digest == done.manifest_digest
        assert got.manifest["layers"][0]["digest"] != prepared.descriptor_layer["digest"]  # signed afresh
