"""The transport workflow end to end: real registries, dev server, signing, faults."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.ocm import signing as sg
from activities.ocm.layout import RepoBase, read_version, write_version
from activities.ocm.oci import Credentials, RegistryClient
from definitions.ocm import (
    ComponentVersionRef,
    RepositorySpec,
    SigningSpec,
    TransportInput,
    TransportResult,
    VerifySpec,
)
from landscape import ocm_example as ex
from tests.integration.ocm.conftest import Registries
from tests.unit.ocm.helpers import descriptor

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ocm-registries")]


def site_spec(reg: Registries, url: str, password_env: str = "APEIRO_TEST_SITE_PASSWORD") -> RepositorySpec:
    return RepositorySpec(
        url=url,
        username="apeiro",
        password_ref=f"env:{password_env}",
        ca_bundle=reg.site.endpoints["ca_bundle"],
    )


def transport_input(reg: Registries, source: str, target: str, **kw: Any) -> TransportInput:
    args: dict[str, Any] = {
        "source": RepositorySpec(url=source),
        "target": site_spec(reg, target),
        "components": [ComponentVersionRef(name=ex.MAIN, version=ex.VERSION)],
        "sign": SigningSpec(
            name="site",
            private_key_ref=f"file:{reg.keys / 'site.pem'}",
            public_key_ref=f"file:{reg.keys / 'site.pub'}",
        ),
        "chunk_size": 64 * 1024,
    }
    args.update(kw)
    return TransportInput(**args)


async def run(client: Client, queue: str, inp: TransportInput) -> TransportResult:
    return await client.execute_workflow(
        "ComponentTransportWorkflow",
        inp,
        id=f"t-{uuid.uuid4().hex[:10]}",
        task_queue=queue,
        result_type=TransportResult,
    )


async def fails_with(client: Client, queue: str, inp: TransportInput) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await run(client, queue, inp)
    cause: Any = info.value.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    assert isinstance(cause, ApplicationError), info.value
    return cause


async def test_by_value_signed_verified_and_rerun_copies_nothing(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    inp = transport_input(registries, example, target_url)
    result = await run(dev_client, ocm_worker, inp)
    assert [(v.name, v.outcome) for v in result.versions] == [(ex.BASE, "copied"), (ex.MAIN, "copied")]
    assert result.verified and result.blobs_copied >= 5 and result.bytes_sent > 0
    tgt = RepoBase.parse(target_url)
    async with registries.site_client() as site, registries.source_client() as src:
        got = await read_version(site, tgt, ex.MAIN, ex.VERSION)
        # signed at the target, verifiable with the public key
        pub = sg.load_public_key((registries.keys / "site.pub").read_bytes())
        assert sg.verify_descriptor(got.descriptor, name="site", public_key=pub, strict=True).valid
        image = got.descriptor["component"]["resources"][0]
        ref = image["access"]["imageReference"]
        assert ref.startswith(f"{tgt.host}/{tgt.prefix}/images/edge-app:1.0.0@sha256:")
        # the image manifest arrived byte for byte (its digest is the recorded ociArtifactDigest)
        assert ref.endswith(image["digest"]["value"])
        src_raw, _, _ = await src.get_manifest("ocm/images/edge-app", "1.0.0")
        dst_raw, _, _ = await site.get_manifest(f"{tgt.prefix}/images/edge-app", "1.0.0")
        assert src_raw == dst_raw and b"\n  " in dst_raw
        # local blobs are layers of the component version at the target
        assert {lay["digest"] for lay in got.blob_layers} == {
            r["access"]["localReference"] for r in got.descriptor["component"]["resources"][1:]
        }
        assert got.descriptor["component"]["repositoryContexts"][-1]["baseUrl"].endswith("/ocm")
    again = await run(dev_client, ocm_worker, inp)
    assert [v.outcome for v in again.versions] == ["skipped", "skipped"]
    assert again.bytes_sent == 0 and again.blobs_copied == 0


async def test_verify_step_at_target(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    await run(dev_client, ocm_worker, transport_input(registries, example, target_url))
    from activities.ocm.transport import verify_component
    from definitions.ocm import VerifyInput

    ok = await _run_activity(
        verify_component,
        VerifyInput(
            repository=site_spec(registries, target_url),
            component=ComponentVersionRef(name=ex.MAIN, version=ex.VERSION),
            verify=[VerifySpec(name="site", public_key_ref=f"file:{registries.keys / 'site.pub'}")],
        ),
    )
    assert ok.valid and ok.name == ex.MAIN
    with pytest.raises(ApplicationError) as info:
        await _run_activity(
            verify_component,
            VerifyInput(
                repository=site_spec(registries, target_url),
                component=ComponentVersionRef(name=ex.MAIN, version=ex.VERSION),
                verify=[VerifySpec(name="site", public_key_ref=f"file:{registries.keys / 'other.pub'}")],
            ),
        )
    assert info.value.type == "SignatureInvalid" and "wrong key" in str(info.value)


async def _run_activity(fn: Any, arg: Any) -> Any:
    from temporalio.testing import ActivityEnvironment

    return await ActivityEnvironment().run(fn, arg)


async def test_by_reference_keeps_image_at_source(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    result = await run(dev_client, ocm_worker, transport_input(registries, example, target_url, mode="by-reference"))
    assert result.verified
    async with registries.site_client() as site:
        got = await read_version(site, RepoBase.parse(target_url), ex.MAIN, ex.VERSION)
        assert got.descriptor["component"]["resources"][0]["access"]["imageReference"].startswith(
            f"{registries.source.endpoints['host']}/ocm/images/"
        )
        assert len(got.blob_layers) == 2  # local blobs always travel with the version


async def test_existing_different_version(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    tgt = RepoBase.parse(target_url)
    async with registries.site_client() as site:
        other = {
            "meta": {"schemaVersion": "v2"},
            "component": {
                "name": ex.BASE,
                "version": ex.VERSION,
                "provider": "someone-else",
                "repositoryContexts": [],
                "sources": [],
                "componentReferences": [],
                "resources": [],
            },
        }
        await write_version(site, tgt, other, [])
    err = await fails_with(dev_client, ocm_worker, transport_input(registries, example, target_url))
    assert err.type == "VersionConflict" and "different content" in str(err) and "overwrite" in str(err)
    result = await run(dev_client, ocm_worker, transport_input(registries, example, target_url, existing="overwrite"))
    assert result.versions[0].outcome == "overwritten"


async def test_missing_component_reference(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    src = RepoBase.parse(example)
    async with registries.source_client() as c:
        gone = {"name": "gone", "componentName": "example.apeiro.dev/gone", "version": "9.9.9"}
        desc = descriptor("example.apeiro.dev/orphan", "0.1.0", "apeiro", componentReferences=[gone])
        await write_version(c, src, desc, [])
    err = await fails_with(
        dev_client,
        ocm_worker,
        transport_input(
            registries,
            example,
            target_url,
            components=[ComponentVersionRef(name="example.apeiro.dev/orphan", version="0.1.0")],
        ),
    )
    assert err.type == "ComponentNotFound" and "missing component reference" in str(err)
    assert "example.apeiro.dev/gone:9.9.9" in str(err)


async def test_bad_registry_credentials(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    inp = transport_input(registries, example, target_url)
    inp.target = site_spec(registries, target_url, password_env="APEIRO_TEST_WRONG_PASSWORD")
    err = await fails_with(dev_client, ocm_worker, inp)
    assert err.type == "BadCredentials" and "rejected the credentials" in str(err)


async def test_source_signature_wrong_key_and_tampered(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    """A signed source version verifies with the right key; a wrong key or a tampered descriptor fails."""
    src = RepoBase.parse(f"{registries.source.url}/signed-{uuid.uuid4().hex[:6]}")
    key = sg.load_private_key((registries.keys / "site.pem").read_bytes())
    async with registries.source_client() as c:
        await ex.push_example(f"{src.registry_url}/{src.prefix}")
        sv = await read_version(c, src, ex.BASE, ex.VERSION)
        signed = sg.sign_descriptor(sv.descriptor, name="release", private_key=key)
        await write_version(c, src, signed, sv.blob_layers)
    url = f"{registries.source.url}/{src.prefix}"
    base_only = [ComponentVersionRef(name=ex.BASE, version=ex.VERSION)]

    def verified(target: str, public_key: str) -> TransportInput:
        key_ref = f"file:{registries.keys / public_key}"
        return transport_input(
            registries, url, target, components=base_only, verify=[VerifySpec(name="release", public_key_ref=key_ref)]
        )

    ok = await run(dev_client, ocm_worker, verified(target_url, "site.pub"))
    assert ok.versions[0].outcome == "copied"
    err = await fails_with(dev_client, ocm_worker, verified(f"{target_url}-2", "other.pub"))
    assert err.type == "SignatureInvalid" and "wrong key" in str(err)
    # tamper: change a signed field after signing
    async with registries.source_client() as c:
        tampered = json.loads(json.dumps(signed))
        tampered["component"]["provider"] = "mallory"
        await write_version(c, src, tampered, sv.blob_layers)
    err = await fails_with(dev_client, ocm_worker, verified(f"{target_url}-3", "site.pub"))
    assert err.type == "SignatureInvalid" and "digest mismatch" in str(err)


async def test_tampered_blob_digest(
    dev_client: Client, ocm_worker: str, registries: Registries, target_url: str
) -> None:
    src = RepoBase.parse(f"{registries.source.url}/tamper-{uuid.uuid4().hex[:6]}")
    async with registries.source_client() as c:
        await ex.push_example(f"{src.registry_url}/{src.prefix}")
        sv = await read_version(c, src, ex.BASE, ex.VERSION)
        desc = json.loads(json.dumps(sv.descriptor))
        desc["component"]["resources"][0]["digest"]["value"] = "0" * 64
        await write_version(c, src, desc, sv.blob_layers)
    err = await fails_with(
        dev_client,
        ocm_worker,
        transport_input(
            registries,
            f"{registries.source.url}/{src.prefix}",
            target_url,
            components=[ComponentVersionRef(name=ex.BASE, version=ex.VERSION)],
        ),
    )
    assert err.type == "DigestMismatch" and "tampered" in str(err)


@pytest.mark.parametrize(
    ("field", "value", "error", "says"),
    [
        ("normalisation", "jsonNormalisation/v9", "UnknownNormalisation", "jsonNormalisation/v9"),
        ("private_key_ref", "env:APEIRO_TEST_NO_SUCH_KEY", "SecretUnavailable", "APEIRO_TEST_NO_SUCH_KEY"),
    ],
)
async def test_unusable_signing_fails_before_copying(
    dev_client: Client,
    ocm_worker: str,
    registries: Registries,
    example: str,
    target_url: str,
    field: str,
    value: str,
    error: str,
    says: str,
) -> None:
    """An unknown normalisation or a signing key that cannot be read fails while planning: nothing is copied."""
    inp = transport_input(registries, example, target_url)
    assert inp.sign is not None
    setattr(inp.sign, field, value)
    err = await fails_with(dev_client, ocm_worker, inp)
    assert err.type == error and says in str(err)
    async with registries.site_client() as site:
        assert await site.head_manifest(f"{RepoBase.parse(target_url).prefix}/images/edge-app", "1.0.0") is None


def test_credentials_never_in_input() -> None:
    """Only references travel: the input model has no field that could hold a password or key."""
    fields = set(RepositorySpec.model_fields) | set(SigningSpec.model_fields)
    assert not {"password", "token", "private_key"} & fields
    _ = Credentials  # the client-side type that does hold them lives in activities only
    _ = RegistryClient


async def test_registries_answering_429_and_503_then_recovering(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str
) -> None:
    """Both registries sit behind a proxy that fails every third request with 429 or 503."""
    from tests.integration.ocm.faulty_proxy import faulty_proxy

    prefix = f"flaky-{uuid.uuid4().hex[:6]}"
    with (
        faulty_proxy(registries.source.url) as src_proxy,
        faulty_proxy(registries.site.url, registries.site.endpoints["ca_bundle"]) as dst_proxy,
    ):
        inp = transport_input(registries, f"{src_proxy.url}/ocm", f"{dst_proxy.url}/{prefix}")
        inp.target = RepositorySpec(
            url=f"{dst_proxy.url}/{prefix}", username="apeiro", password_ref="env:APEIRO_TEST_SITE_PASSWORD"
        )
        result = await run(dev_client, ocm_worker, inp)
    assert result.verified and [v.outcome for v in result.versions] == ["copied", "copied"]
    assert 429 in src_proxy.faults and 503 in src_proxy.faults
    assert 429 in dst_proxy.faults and 503 in dst_proxy.faults
    # the copy behind the proxy is complete and signed at the real registry
    async with registries.site_client() as site:
        got = await read_version(site, RepoBase.parse(f"{registries.site.url}/{prefix}"), ex.MAIN, ex.VERSION)
    pub = sg.load_public_key((registries.keys / "site.pub").read_bytes())
    assert sg.verify_descriptor(got.descriptor, name="site", public_key=pub, strict=True).valid


async def test_history_replays_deterministically(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str, target_url: str
) -> None:
    """A finished transport's history replays without non-determinism (guards future edits)."""
    from temporalio.worker import Replayer

    from workers.config import data_converter
    from workers.worker import workflow_runner
    from workflows.transport import ComponentTransportWorkflow

    wid = f"replay-{uuid.uuid4().hex[:8]}"
    handle = await dev_client.start_workflow(
        "ComponentTransportWorkflow",
        transport_input(registries, example, target_url),
        id=wid,
        task_queue=ocm_worker,
        result_type=TransportResult,
    )
    result = await handle.result()
    assert result.verified
    history = await handle.fetch_history()
    replayer = Replayer(
        debug_mode=True,
        workflows=[ComponentTransportWorkflow],
        data_converter=data_converter(),
        workflow_runner=workflow_runner(),
    )
    replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None


async def test_same_registry_mounts_instead_of_copying(
    dev_client: Client, ocm_worker: str, registries: Registries, example: str
) -> None:
    """Within one registry every blob is mounted across repositories: no blob bytes travel."""
    target = f"{registries.source.url}/mirror-{uuid.uuid4().hex[:6]}"
    inp = transport_input(registries, example, target)
    inp.target = RepositorySpec(url=target)
    result = await run(dev_client, ocm_worker, inp)
    assert result.verified and [v.outcome for v in result.versions] == ["copied", "copied"]
    assert result.bytes_sent == 0 and result.blobs_copied == 0
    async with registries.source_client() as c:
        got = await read_version(c, RepoBase.parse(target), ex.MAIN, ex.VERSION)
        for lay in got.blob_layers:
            assert await c.blob_size(got.repo, lay["digest"]) == lay["size"]
