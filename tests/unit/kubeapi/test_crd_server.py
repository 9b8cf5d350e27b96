"""CRDs served as kube-apiserver serves them: schema checks, pruning, defaults, CEL, discovery, Table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.unit.kubeapi.crd_support import TABLE, causes, client

WIDGETS = "/apis/example.dev/v1/namespaces/default/widgets"
MERGE = {"content-type": "application/merge-patch+json"}


def crd(spec_schema: dict[str, Any], status: dict[str, Any] | None = None, **version: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.dev"},
        "spec": {
            "group": "example.dev",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": spec_schema, "status": status or {"type": "object"}},
                        }
                    },
                    **version,
                }
            ],
        },
    }


SPEC = {
    "type": "object",
    "required": ["size"],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": 10},
        "colour": {"type": "string", "enum": ["red", "blue"], "default": "red"},
        "label": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "port": {"x-kubernetes-int-or-string": True},
        "note": {"type": "string", "nullable": True},
        "at": {"type": "string", "format": "date-time"},
        "ip": {"type": "string", "format": "ipv4"},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "access": {
            "type": "object",
            "properties": {"ip": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "access is immutable"}],
        },
    },
}


@pytest.fixture
def api() -> TestClient:
    c = client()
    r = c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd(SPEC))
    assert r.status_code == 201, r.text
    return c


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_creating_a_crd_serves_its_kind_with_names_and_scope(api: TestClient) -> None:
    crd_obj = api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.dev").json()
    assert {c["type"]: c["status"] for c in crd_obj["status"]["conditions"]}["Established"] == "True"
    resources = {r["name"]: r for r in api.get("/apis/example.dev/v1").json()["resources"]}
    assert resources["widgets"]["shortNames"] == ["wd"] and resources["widgets"]["namespaced"] is True
    assert resources["widgets"]["categories"] == ["all"]
    assert "widgets/status" in resources
    assert api.get("/apis").json()["groups"][-1]["name"] in {"example.dev", "apiextensions.k8s.io"}


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({}, "spec.size", "FieldValueRequired"),
        ({"size": "3"}, "spec.size", "FieldValueTypeInvalid"),
        ({"size": 11}, "spec.size", "FieldValueInvalid"),
        ({"size": 0}, "spec.size", "FieldValueInvalid"),
        ({"size": 1, "colour": "green"}, "spec.colour", "FieldValueNotSupported"),
        ({"size": 1, "label": "A1"}, "spec.label", "FieldValueInvalid"),
        ({"size": 1, "label": "a"}, "spec.label", "FieldValueInvalid"),
        ({"size": 1, "label": "abcdef"}, "spec.label", "FieldValueTooLong"),
        ({"size": 1, "tags": []}, "spec.tags", "FieldValueInvalid"),
        ({"size": 1, "tags": ["a", "b", "c"]}, "spec.tags", "FieldValueTooMany"),
        ({"size": 1, "tags": [1]}, "spec.tags[0]", "FieldValueTypeInvalid"),
        ({"size": 1, "port": 1.5}, "spec.port", "FieldValueTypeInvalid"),
        ({"size": 1, "at": "yesterday"}, "spec.at", "FieldValueInvalid"),
        ({"size": 1, "ip": "10.0.0.300"}, "spec.ip", "FieldValueInvalid"),
    ],
)
def test_schema_violations_are_422_with_one_cause_per_field(
    api: TestClient, spec: dict[str, Any], field: str, reason: str
) -> None:
    r = api.post(WIDGETS, json=widget(**spec))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid" and causes(body) == [(field, reason)]
    assert body["message"].startswith(f'Widget.example.dev "w" is invalid: {field}: ')


def test_valid_values_defaults_nullable_and_int_or_string(api: TestClient) -> None:
    r = api.post(WIDGETS, json=widget(size=3.0, port="http", note=None, at="2026-01-02T03:04:05Z", ip="10.0.0.1"))
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert spec["size"] == 3 and isinstance(spec["size"], int)
    assert spec["colour"] == "red" and spec["note"] is None and spec["port"] == "http"


def test_unknown_fields_are_pruned_with_a_warning_strict_refuses_and_preserve_keeps(api: TestClient) -> None:
    r = api.post(WIDGETS, json={**widget(size=1, extra=1, free={"any": {"thing": 1}}), "top": 1})
    assert r.status_code == 201
    assert "extra" not in r.json()["spec"] and "top" not in r.json()
    assert r.json()["spec"]["free"] == {"any": {"thing": 1}}
    assert sorted(r.headers.get_list("warning")) == [
        '299 - "unknown field \\"spec.extra\\""',
        '299 - "unknown field \\"top\\""',
    ]
    strict = api.post(WIDGETS + "?fieldValidation=Strict", json=widget("w2", size=1, extra=1))
    assert strict.status_code == 400 and 'unknown field "spec.extra"' in strict.json()["message"]
    clean = api.post(WIDGETS + "?fieldValidation=Strict", json=widget("w3", size=1))
    assert clean.status_code == 201 and not clean.headers.get_list("warning")


def test_cel_transition_rule_runs_with_old_self_on_update_only(api: TestClient) -> None:
    assert api.post(WIDGETS, json=widget(size=1, access={"ip": "10.0.0.1"})).status_code == 201
    r = api.patch(f"{WIDGETS}/w", content=json.dumps({"spec": {"access": {"ip": "10.0.0.2"}}}), headers=MERGE)
    assert r.status_code == 422
    assert causes(r.json()) == [("spec.access", "FieldValueInvalid")]
    assert r.json()["details"]["causes"][0]["message"] == 'Invalid value: "object": access is immutable'
    ok = api.patch(f"{WIDGETS}/w", content=json.dumps({"spec": {"size": 2}}), headers=MERGE)
    assert ok.status_code == 200 and ok.json()["metadata"]["generation"] == 2


def test_status_subresource_and_status_schema() -> None:
    c = client()
    status = {"type": "object", "properties": {"phase": {"type": "string", "enum": ["A", "B"]}}}
    assert c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd(SPEC, status)).status_code == 201
    created = c.post(WIDGETS, json={**widget(size=1), "status": {"phase": "A"}}).json()
    assert "status" not in created  # status is not written through the main resource
    bad = c.patch(f"{WIDGETS}/w/status", content=json.dumps({"status": {"phase": "C"}}), headers=MERGE)
    assert bad.status_code == 422 and causes(bad.json()) == [("status.phase", "FieldValueNotSupported")]
    good = c.patch(f"{WIDGETS}/w/status", content=json.dumps({"status": {"phase": "B"}}), headers=MERGE)
    assert good.status_code == 200 and good.json()["metadata"]["generation"] == 1


def test_table_output_uses_printer_columns() -> None:
    c = client()
    columns = [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    assert (
        c.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd(SPEC, additionalPrinterColumns=columns)
        ).status_code
        == 201
    )
    c.post(WIDGETS, json=widget(size=4))
    body = c.get(WIDGETS, headers={"Accept": TABLE}).json()
    assert body["kind"] == "Table"
    assert [d["name"] for d in body["columnDefinitions"]] == ["Name", "Size", "Ready", "Age"]
    cells = body["rows"][0]["cells"]
    assert cells[:3] == ["w", 4, None] and cells[3].endswith("s")
    assert body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    one = c.get(f"{WIDGETS}/w", headers={"Accept": TABLE}).json()
    assert one["rows"][0]["cells"][1] == 4


def test_openapi_v2_and_v3_publish_the_schema(api: TestClient) -> None:
    v2 = api.get("/openapi/v2").json()
    definition = v2["definitions"]["dev.example.v1.Widget"]
    assert definition["x-kubernetes-group-version-kind"] == [
        {"group": "example.dev", "kind": "Widget", "version": "v1"}
    ]
    assert definition["properties"]["spec"]["required"] == ["size"]
    root = api.get("/openapi/v3").json()["paths"]
    url = root["apis/example.dev/v1"]["serverRelativeURL"]
    doc = api.get(url).json()
    assert (
        doc["components"]["schemas"]["dev.example.v1.Widget"]["properties"]["spec"]["properties"]["size"]["maximum"]
        == 10
    )
    assert api.get("/openapi/v3/apis/nothing.dev/v1").status_code == 404


def test_deleting_the_crd_stops_serving_the_kind(api: TestClient) -> None:
    api.post(WIDGETS, json=widget(size=1))
    assert api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.dev").status_code == 200
    assert api.get(WIDGETS).status_code == 404
    assert api.get("/apis/example.dev/v1").status_code == 404


def test_a_crd_whose_name_does_not_match_is_refused() -> None:
    c = client()
    bad = crd(SPEC)
    bad["metadata"]["name"] = "gadgets.example.dev"
    r = c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=bad)
    assert r.status_code == 422 and causes(r.json()) == [("metadata.name", "FieldValueInvalid")]


def test_events_are_served_for_kubectl_describe() -> None:
    c = client()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1"},
        "reason": "Deployed",
        "involvedObject": {"kind": "Stage", "name": "s", "namespace": "default"},
        "message": "ok",
        "type": "Normal",
    }
    assert c.post("/api/v1/namespaces/default/events", json=event).status_code == 201
    listed = c.get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name=s").json()["items"]
    assert [e["reason"] for e in listed] == ["Deployed"]


def test_watch_as_table_sends_one_row_tables(api: TestClient) -> None:
    rv = api.post(WIDGETS, json=widget(size=2)).json()["metadata"]["resourceVersion"]
    api.patch(f"{WIDGETS}/w", content=json.dumps({"spec": {"size": 3}}), headers=MERGE)
    with api.stream(
        "GET", f"{WIDGETS}?watch=1&resourceVersion={int(rv) - 1}&timeoutSeconds=1", headers={"Accept": TABLE}
    ) as r:
        events = [json.loads(line) for line in r.iter_lines() if line]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]
    assert all(e["object"]["kind"] == "Table" and len(e["object"]["rows"]) == 1 for e in events)
    assert events[0]["object"]["rows"][0]["cells"][0] == "w"
