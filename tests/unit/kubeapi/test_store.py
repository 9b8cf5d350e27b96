"""The API server's pure pieces: patches, apply ownership, selectors, store semantics."""

from __future__ import annotations

from typing import Any

import pytest

from landscape.kubeapi import patches
from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.kinds import Kind, default_registry
from landscape.kubeapi.selectors import field_selector, label_selector
from landscape.kubeapi.store import Store


def test_merge_patch_rfc7386() -> None:
    assert patches.merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == {
        "a": {"c": 2, "d": 3},
        "l": [2],
    }


def test_strategic_merge_by_key_with_delete_directive() -> None:
    keys = {"spec.workers": "name"}
    cur = {"spec": {"workers": [{"name": "a", "x": 1}, {"name": "b", "x": 2}]}}
    out = patches.strategic_merge_patch(
        cur,
        {"spec": {"workers": [{"name": "a", "y": 9}, {"name": "b", "$patch": "delete"}, {"name": "c"}]}},
        keys,
    )
    assert out == {"spec": {"workers": [{"name": "a", "x": 1, "y": 9}, {"name": "c"}]}}


def test_json_patch_test_failure_is_422() -> None:
    with pytest.raises(ApiError) as err:
        patches.json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert err.value.code == 422


def test_apply_removes_fields_the_manager_stopped_applying_and_detects_conflicts() -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    one = patches.server_side_apply(base, {**base, "data": {"a": "1", "b": "2"}}, "m1", False, "t")
    two = patches.server_side_apply(one, {**base, "data": {"a": "1"}}, "m1", False, "t")
    assert two["data"] == {"a": "1"}
    with pytest.raises(ApiError) as err:
        patches.server_side_apply(two, {**base, "data": {"a": "other"}}, "m2", False, "t")
    assert err.value.code == 409 and ".data.a" in err.value.message
    forced = patches.server_side_apply(two, {**base, "data": {"a": "other"}}, "m2", True, "t")
    assert patches.ownership(forced)[("data", "a")] == "m2"


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a!=1", {"a": "1"}, False),
        ("a in (1,2),b", {"a": "2", "b": "x"}, True),
        ("a notin (1,2)", {"a": "3"}, True),
        ("!a", {"a": "3"}, False),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_selector(selector)({"metadata": {"labels": labels}}) is expected


def test_field_selector_and_bad_selector() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "n", "namespace": "ns"}, "status": {"phase": "Ready"}}
    assert field_selector("metadata.name=n,status.phase!=Failed")(obj)
    with pytest.raises(ApiError) as err:
        label_selector("a in 1")
    assert err.value.code == 400


def _store() -> tuple[Store, Kind]:
    reg = default_registry()
    kind = reg.register(Kind("example.dev", "v1", "Thing", "things"))
    return Store(reg, history_size=3), kind


def test_generation_status_conflict_finalizers_and_history() -> None:
    store, kind = _store()
    obj = store.create(kind, "ns", {"metadata": {"name": "t", "finalizers": ["f"]}, "spec": {"a": 1}})
    rv0 = obj["metadata"]["resourceVersion"]
    st = store.update(kind, "ns", "t", {**obj, "status": {"ok": True}}, subresource="status")
    assert st["metadata"]["generation"] == 1 and st["status"] == {"ok": True}
    same = store.update(kind, "ns", "t", st)
    assert same["metadata"]["resourceVersion"] == st["metadata"]["resourceVersion"]  # no-op: no new rv
    with pytest.raises(ApiError) as err:
        store.update(kind, "ns", "t", {**obj, "spec": {"a": 2}})  # stale rv0
    assert err.value.code == 409
    spec = store.patch(kind, "ns", "t", patches.MERGE, {"spec": {"a": 2}})
    assert spec["metadata"]["generation"] == 2
    kept = store.delete(kind, "ns", "t")
    assert kept is not None and kept["metadata"]["deletionTimestamp"]
    store.patch(kind, "ns", "t", patches.MERGE, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError):
        store.get(kind, "ns", "t")
    with pytest.raises(ApiError) as err:  # history of 3 events no longer reaches back to rv0
        store.watch(kind, "ns", rv0, lambda o: True)
    assert err.value.code == 410 and err.value.reason == "Expired"
