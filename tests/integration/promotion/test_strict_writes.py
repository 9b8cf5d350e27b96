"""Everything the Konfidence activities write validates strictly against Konfidence's upstream CRDs:
the Stage's ``spec.vector`` on deploy, re-deploy and rollback, and the VectorPromotion records (with an
approval) when a ring works through Konfidence's own records. Every write goes through the strict
recording proxy (``fieldValidation=Strict`` forced), so an unknown or pruned field is a 400 there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities import konfidence
from definitions.promotion import Target
from definitions.promotion_runs import StageDeploy
from landscape.kubeapi.part import KubeApiServer
from tests.integration.promotion.conftest import upstream_konfidence_crds
from tests.integration.strict_recorder import StrictRecorder

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("promotion-strict")]


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StrictRecorder, Path]]:
    upstream = upstream_konfidence_crds()
    if upstream is None:
        pytest.skip("../shared/testdata/crds/konfidence is not here: the strict check needs the upstream CRDs")
    part = KubeApiServer(
        plugins=("landscape.konfidence",),
        settings={"konfidence.deploySeconds": "0.05", "konfidence.crds": str(upstream)},
        seed_garden=False,
    )
    state = Path(tmp_path_factory.mktemp("strict-konfidence"))
    part.start(state)
    rec = StrictRecorder(part.url).start()
    kubeconfig = state / "proxy-kubeconfig"
    kubeconfig.write_text(rec.kubeconfig())
    try:
        yield rec, kubeconfig
    finally:
        rec.stop()
        part.stop()


def vector(version: str) -> dict[str, Any]:
    return {"component": "example.apeiro.dev/edge-app", "version": version, "repository": "http://r"}


async def test_konfidence_writes_validate_strictly_against_the_upstream_crds(
    recorder: tuple[StrictRecorder, Path],
) -> None:
    rec, kubeconfig = recorder
    env = ActivityEnvironment()
    name = f"s-{uuid.uuid4().hex[:6]}"
    direct = Target(stage=name, kubeconfig=str(kubeconfig))
    await env.run(konfidence.deploy_stage, StageDeploy(target=direct, vector=vector("1.0.0")))
    await env.run(konfidence.deploy_stage, StageDeploy(target=direct, vector=vector("1.1.0")))
    back = await env.run(konfidence.deploy_stage, StageDeploy(target=direct, vector=vector("1.0.0")))  # rollback
    assert back.vector["reference"] == "http://r//example.apeiro.dev/edge-app:1.0.0"
    via = Target(stage=name, kubeconfig=str(kubeconfig), vector_promotion_config=f"cfg-{name}")
    await env.run(konfidence.deploy_stage, StageDeploy(target=via, vector=vector("1.2.0"), approved_by="alice"))
    await env.run(konfidence.deploy_stage, StageDeploy(target=via, vector=vector("1.3.0")))

    kinds = {w.path.split("/")[6] for w in rec.writes if w.path.startswith("/apis/konfidence.cloud/")}
    assert {"stages", "vectorpromotions"} <= kinds, rec.writes
    assert [str(w) for w in rec.writes if w.violation] == []
    assert all(w.status < 300 or w.status == 409 for w in rec.writes), [str(w) for w in rec.writes]


def test_the_recorder_catches_what_the_old_product_wrote(recorder: tuple[StrictRecorder, Path]) -> None:
    """The check is not vacuous: the pre-issue-12 Stage (vector as an object) and a pruned field fail."""
    rec, _ = recorder
    before = len(rec.writes)
    base = f"{rec.url}/apis/konfidence.cloud/v1alpha1/namespaces/default/stages"
    old = {
        "apiVersion": "konfidence.cloud/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "old"},
        "spec": {"vector": vector("1.0.0")},
    }
    pruned = {
        "apiVersion": "konfidence.cloud/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pruned"},
        "spec": {"vector": "http://r//x.io/a:1", "history": []},
    }
    assert httpx.post(base, json=old, timeout=5).status_code in (400, 422)
    assert httpx.post(f"{base}?fieldValidation=Warn", json=pruned, timeout=5).status_code == 400
    caught = rec.writes[before:]
    assert [w.violation for w in caught] == [True, True]
    assert caught[1].asked == "Warn" and "unknown field" in caught[1].message


async def test_a_release_vector_validates_strictly_and_rolls_back_as_one(
    recorder: tuple[StrictRecorder, Path],
) -> None:
    """A release is one vector (the OCM component that pins its components, as Konfidence's VectorTemplate
    assembles it): the Stage gets that reference; rolling back re-points it, taking every component back."""
    rec, kubeconfig = recorder
    env = ActivityEnvironment()
    before = len(rec.writes)
    target = Target(stage=f"r-{uuid.uuid4().hex[:6]}", kubeconfig=str(kubeconfig))
    single = await env.run(konfidence.deploy_stage, StageDeploy(target=target, vector=vector("1.0.0")))
    release = {"component": "example.apeiro.dev/edge-release", "repository": "http://r"}
    await env.run(konfidence.deploy_stage, StageDeploy(target=target, vector={**release, "version": "2026.12.1"}))
    second = await env.run(konfidence.deploy_stage,
                           StageDeploy(target=target, vector={**release, "version": "2026.12.2"}))
    assert second.previous_vector is not None and second.previous_vector["version"] == "2026.12.1"
    back = await env.run(konfidence.deploy_stage, StageDeploy(target=target, vector=second.previous_vector))
    assert back.vector["reference"] == "http://r//example.apeiro.dev/edge-release:2026.12.1"
    # a release rolled back on a Stage that ran a single component before goes back to exactly that vector
    undo = await env.run(konfidence.deploy_stage, StageDeploy(target=target, vector=single.vector))
    assert undo.vector["reference"] == "http://r//example.apeiro.dev/edge-app:1.0.0"
    writes = rec.writes[before:]
    assert len(writes) == 5, [str(w) for w in writes]
    assert [str(w) for w in writes if w.violation or w.status >= 300] == []
