"""`apeiro mesh manifests`: golden files plus the structural checks kcp and the portal rely on.

Regenerate the golden files after an intended change with `APEIRO_UPDATE_GOLDEN=1 pytest tests/test_mesh_manifests.py`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from definitions.mesh import EXPORT_NAME, GROUP, kinds
from definitions.mesh_manifests import CONTENT_FOR, PART_OF, open_api_schema, schema_name
from definitions.mesh_schema import problems
from landscape.kubeapi import schema as kube_schema
from workers.cli import main
from workers.cli.mesh import manifests, render

GOLDEN = Path(__file__).parent / "golden" / "mesh"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@pytest.mark.parametrize("form", ["kcp", "syncagent"])
def test_golden(form: str) -> None:
    text = render(manifests(form, "root:providers:apeiro", catalog=False))
    path = GOLDEN / f"{form}.yaml"
    if os.environ.get("APEIRO_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path} is stale: regenerate with APEIRO_UPDATE_GOLDEN=1"


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_every_export_resource_has_its_schema() -> None:
    docs = manifests("kcp", "root:providers:apeiro", catalog=False)
    schemas = {d["metadata"]["name"]: d for d in _by_kind(docs, "APIResourceSchema")}
    (export,) = _by_kind(docs, "APIExport")
    assert export["apiVersion"] == "apis.kcp.io/v1alpha2"
    assert len(export["spec"]["resources"]) == len(kinds()) == len(schemas)
    for res in export["spec"]["resources"]:
        ars = schemas[res["schema"]]
        prefix, plural, group = res["schema"].split(".", 2)
        assert (plural, group) == (res["name"], res["group"]) == (ars["spec"]["names"]["plural"], ars["spec"]["group"])
        assert re.fullmatch(r"v[0-9a-f]{10}", prefix)
        assert res["storage"] == {"crd": {}}
    assert {"group": "", "resource": "events", "verbs": ["create", "patch", "get", "list", "watch"]} in export["spec"][
        "permissionClaims"
    ]


def test_names_labels_and_links() -> None:
    docs = manifests("kcp", "root:providers:apeiro", catalog=False)
    for d in docs:
        assert DNS_SUBDOMAIN.match(d["metadata"]["name"]), d["metadata"]["name"]
        assert d["metadata"]["labels"][PART_OF] == "apeiro-orchestrator"
    (meta,) = _by_kind(docs, "ProviderMetadata")
    (content,) = _by_kind(docs, "ContentConfiguration")
    (slice_,) = _by_kind(docs, "APIExportEndpointSlice")
    (role,) = _by_kind(docs, "ClusterRole")
    assert meta["metadata"]["name"] == EXPORT_NAME  # the marketplace joins them by the export's name
    assert content["metadata"]["labels"][CONTENT_FOR] == EXPORT_NAME
    assert _by_kind(docs, "APIExport")[0]["metadata"]["labels"][CONTENT_FOR] == EXPORT_NAME
    assert slice_["spec"]["export"] == {"path": "root:providers:apeiro", "name": EXPORT_NAME}
    assert role["rules"][0]["verbs"] == ["bind"] and role["rules"][0]["resourceNames"] == [EXPORT_NAME]
    fragment = json.loads(content["spec"]["inlineConfiguration"]["content"])
    assert [n["pathSegment"] for n in fragment["luigiConfigFragment"]["data"]["nodes"]] == [k.plural for k in kinds()]


@pytest.mark.parametrize("kind", kinds(), ids=lambda k: k.kind)
def test_schemas_are_structural(kind: Any) -> None:
    schema = open_api_schema(kind)
    assert problems(schema) == []
    assert schema_name(kind).endswith(f".{kind.plural}.{GROUP}")


def test_problems_finds_what_is_not_structural() -> None:
    bad = {
        "type": "object",
        "properties": {"a": {"$ref": "#/x"}, "b": {}, "c": {"type": "object", "additionalProperties": False}},
    }
    assert problems(bad) == [".a: $ref", ".a: no type", ".b: no type", ".c: additionalProperties false"]


def _spec_schema(kind_name: str) -> Any:
    kind = next(k for k in kinds() if k.kind == kind_name)
    return open_api_schema(kind)


def test_an_order_validates_against_the_generated_schema() -> None:
    """The landscape's kube-apiserver validator accepts a good order and names each bad field."""
    schema = _spec_schema("PipelineRun")
    good = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {},
        "spec": {
            "pipeline": "cluster-lifecycle",
            "inputs": {"site": "edge-1"},
            "approvals": [{"step": "gate", "approver": "ops"}],
        },
    }
    assert kube_schema.validate(good, schema, "") == []
    bad = {**good, "spec": {"pipeline": "", "approvals": [{"step": "gate"}]}}
    fields = sorted(c[0] for c in kube_schema.validate(bad, schema, ""))
    assert fields == ["spec.approvals[0].approver", "spec.pipeline"], fields


def test_lifecycle_kinds_take_the_step_arguments_and_approvals() -> None:
    spec = _spec_schema("ClusterUpgrade")["properties"]["spec"]
    assert spec["required"] == ["name"]
    assert "approvals" in spec["properties"] and "target_version" in spec["properties"]
    assert "status" in _spec_schema("ClusterUpgrade")["properties"]
    assert "status" not in _spec_schema("Pipeline")["properties"]


def test_cli_writes_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.yaml"
    assert main(["mesh", "manifests", "--catalog", "--write", str(out)]) == 0
    docs = list(yaml.safe_load_all(out.read_text()))
    catalog = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Pipeline"}
    assert "cluster-lifecycle" in catalog
    assert catalog["cluster-lifecycle"]["spec"]["inputs"]["site"]["default"] == "edge-demo-1"
    assert main(["mesh", "manifests", "--form", "syncagent"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    crds = [d for d in printed if d["kind"] == "CustomResourceDefinition"]
    assert all(problems(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == [] for c in crds)
    assert {d["spec"]["resource"]["kind"] for d in printed if d["kind"] == "PublishedResource"} == {
        k.kind for k in kinds()
    }
