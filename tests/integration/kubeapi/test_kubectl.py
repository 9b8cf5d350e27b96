"""The real kubectl against the landscape API server: apply (server-side field validation), get (Table
with the CRD's printer columns), describe (events), explain (OpenAPI v3), on Konfidence's upstream CRDs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from landscape.kubeapi.part import KubeApiServer
from tests.server_fixtures import shared_testdata

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("kubectl")]

KUBECTL = shutil.which("kubectl")
STAGE = """apiVersion: konfidence.cloud/v1alpha1
kind: Stage
metadata: {name: dev}
spec: {vector: "registry.example/ocm//example.org/app:1.0.0"}
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    upstream = shared_testdata() / "crds" / "konfidence"
    settings = {"konfidence.deploySeconds": "0.1"}
    if upstream.is_dir():
        settings["crds.paths"] = str(upstream)
    part = KubeApiServer(plugins=("landscape.konfidence",), settings=settings, seed_garden=False)
    part.start(tmp_path_factory.mktemp("kubectl-api"))
    try:
        yield part
    finally:
        part.stop()


def kubectl(api: KubeApiServer, tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {
        **os.environ,
        "KUBECONFIG": api.endpoints["kubeconfig"],
        "KUBECACHEDIR": str(tmp / "cache"),
        "HOME": str(tmp),
    }
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def test_apply_get_describe_explain(api: KubeApiServer, tmp_path: Path) -> None:
    applied = kubectl(api, tmp_path, "apply", "-f", "-", stdin=STAGE)
    assert applied.returncode == 0 and "stage.konfidence.cloud/dev created" in applied.stdout, applied.stderr
    for _ in range(50):
        got = kubectl(api, tmp_path, "get", "stages")
        if "True" in got.stdout:
            break
    assert got.stdout.split("\n")[0].split() == ["NAME", "READY", "AGE", "VECTOR"]
    assert got.stdout.split("\n")[1].split()[::3] == ["dev", "registry.example/ocm//example.org/app:1.0.0"]
    described = kubectl(api, tmp_path, "describe", "stage", "dev")
    assert "Vector History:" in described.stdout and "StageVersionReconciled" in described.stdout
    explained = kubectl(api, tmp_path, "explain", "stage.spec")
    assert "vector\t<string> -required-" in explained.stdout, explained.stdout + explained.stderr


def test_apply_refuses_unknown_and_invalid_fields(api: KubeApiServer, tmp_path: Path) -> None:
    bad = STAGE.replace("metadata: {name: dev}", "metadata: {name: bad}").replace(
        'spec: {vector: "registry.example/ocm//example.org/app:1.0.0"}', "spec: {vector: 3, extra: 1}"
    )
    strict = kubectl(api, tmp_path, "apply", "-f", "-", stdin=bad)
    assert strict.returncode != 0 and 'unknown field "spec.extra"' in strict.stderr
    lax = kubectl(api, tmp_path, "apply", "--validate=false", "-f", "-", stdin=bad)
    assert lax.returncode != 0 and "spec.vector: Invalid value" in lax.stderr and "must be of type string" in lax.stderr
