"""Patch flavours kube-apiserver accepts: JSON merge (RFC 7386), strategic merge, JSON patch (RFC 6902)
and server-side apply (approximated: leaf-field ownership per field manager, conflicts, and removal
of fields a manager stops applying).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from landscape.kubeapi.errors import ApiError

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE, STRATEGIC, JSON_PATCH, APPLY)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, merge_keys: dict[str, str], path: str = "") -> Any:
    """Like merge patch, but lists whose path has a merge key merge element-wise by that key.

    Supports the ``$patch: delete`` / ``$patch: replace`` directives on list elements and maps, and
    ``$retainKeys`` is ignored. Lists without a merge key are replaced, as for atomic lists.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        sub = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and sub in merge_keys and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, merge_keys[sub], merge_keys, sub)
        else:
            result[key] = strategic_merge_patch(result.get(key), value, merge_keys, sub)
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str, merge_keys: dict[str, str], path: str) -> list[Any]:
    out = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ApiError(422, f"{path}: every element of a strategic merge list needs the merge key {key!r}")
        idx = next((i for i, e in enumerate(out) if isinstance(e, dict) and e.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            out[idx] = strategic_merge_patch(out[idx], item, merge_keys, path)
    return out


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise ApiError(400, "a JSON patch must be a list of operations (application/json-patch+json)")
    try:
        result: dict[str, Any] = jsonpatch.apply_patch(target, operations, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApiError(422, f"the JSON patch test operation failed: {exc}") from None
    except (
        jsonpatch.JsonPatchException,
        jsonpatch.JsonPointerException,
        KeyError,
        IndexError,
        TypeError,
    ) as exc:
        raise ApiError(422, f"the JSON patch could not be applied: {exc}") from None
    return result


# --- server-side apply ---------------------------------------------------------------------------

_IGNORED_TOP = {"apiVersion", "kind"}
_IGNORED_META = {
    "name",
    "namespace",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
}


def leaf_paths(obj: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Leaf fields of an applied configuration; lists count as atomic leaves."""
    out: dict[tuple[str, ...], Any] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            if not prefix and k in _IGNORED_TOP:
                continue
            if prefix == ("metadata",) and k in _IGNORED_META:
                continue
            out.update(leaf_paths(v, (*prefix, k)))
    elif prefix:
        out[prefix] = obj
    return out


def get_path(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return False, None
        cur = cur[p]
    return True, cur


def set_path(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    cur = obj
    for p in path[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[path[-1]] = copy.deepcopy(value)


def del_path(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    cur: Any = obj
    parents = []
    for p in path[:-1]:
        if not isinstance(cur, dict) or p not in cur:
            return
        parents.append((cur, p))
        cur = cur[p]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    for parent, key in reversed(parents):  # prune emptied maps
        if parent[key] == {}:
            del parent[key]
        else:
            break


def path_str(path: tuple[str, ...]) -> str:
    return "." + ".".join(path)


def ownership(obj: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """Field -> manager, from our simplified `metadata.managedFields` (fieldsV1 holds `f:a.b` keys)."""
    owners: dict[tuple[str, ...], str] = {}
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        for f in entry.get("fieldsV1") or {}:
            if f.startswith("f:"):
                owners[tuple(f[2:].split("."))] = entry.get("manager", "")
    return owners


def set_ownership(
    obj: dict[str, Any],
    owners: dict[tuple[str, ...], str],
    operations: dict[str, str],
    now: str,
    api_version: str,
) -> None:
    by_manager: dict[str, dict[str, Any]] = {}
    for path, manager in sorted(owners.items()):
        by_manager.setdefault(manager, {})["f:" + ".".join(path)] = {}
    obj.setdefault("metadata", {})["managedFields"] = [
        {
            "manager": m,
            "operation": operations.get(m, "Update"),
            "apiVersion": api_version,
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        for m, fields in by_manager.items()
    ]


def apply_operations(obj: dict[str, Any]) -> dict[str, str]:
    return {
        e.get("manager", ""): e.get("operation", "Update") for e in obj.get("metadata", {}).get("managedFields") or []
    }


def server_side_apply(
    current: dict[str, Any], applied: dict[str, Any], manager: str, force: bool, now: str
) -> dict[str, Any]:
    """Apply ``applied`` as ``manager``. Conflicts (409) when another manager owns a field with a
    different value, unless ``force``; fields this manager applied before and omits now are removed.
    """
    owners = ownership(current)
    operations = apply_operations(current)
    new_leaves = leaf_paths(applied)
    conflicts = []
    for path, value in new_leaves.items():
        owner = owners.get(path)
        exists, cur_value = get_path(current, path)
        if owner and owner != manager and exists and cur_value != value:
            conflicts.append((path, owner))
    if conflicts and not force:
        msg = "; ".join(f'conflict with "{o}": {path_str(p)}' for p, o in conflicts)
        raise ApiError(
            409,
            f"Apply failed with {len(conflicts)} conflict(s): {msg}",
            reason="Conflict",
            details={
                "causes": [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f'conflict with "{o}"',
                        "field": path_str(p),
                    }
                    for p, o in conflicts
                ]
            },
        )
    result = copy.deepcopy(current)
    for path, owner in list(owners.items()):
        if owner == manager and path not in new_leaves:
            del_path(result, path)
            del owners[path]
    for path, value in new_leaves.items():
        set_path(result, path, value)
        owners[path] = manager
    # A field owned by a path that is now a prefix/extension of an applied one changes hands too.
    for path in list(owners):
        if owners[path] != manager and any(
            path[: len(p)] == p or p[: len(path)] == path for p in new_leaves if p != path
        ):
            del owners[path]
    operations[manager] = "Apply"
    set_ownership(result, owners, operations, now, str(current.get("apiVersion", "")))
    return result


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, now: str) -> None:
    """After a non-apply write, the fields it changed become owned by ``manager`` (operation Update)."""
    owners = ownership(new) if old is None else ownership(old)
    operations = apply_operations(old or new)
    old_leaves = leaf_paths(old) if old else {}
    changed = False
    for path, value in leaf_paths(new).items():
        if path[0] == "status" and manager == "":
            continue
        if old_leaves.get(path, object()) != value and owners.get(path) != manager:
            owners[path] = manager
            changed = True
    for path in list(owners):
        if not get_path(new, path)[0]:
            del owners[path]
            changed = True
    if changed or old is None:
        operations.setdefault(manager, "Update")
        set_ownership(new, owners, operations, now, str(new.get("apiVersion", "")))
    elif old is not None:
        new.setdefault("metadata", {})["managedFields"] = copy.deepcopy(
            old.get("metadata", {}).get("managedFields") or []
        )
