"""Table output (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``), what ``kubectl get`` asks for.

Columns: Name, then the served version's ``additionalPrinterColumns`` (or Age when it has none), as
apiextensions-apiserver's table convertor does; ``date`` cells are shown as an age (``5m``), a column
whose path finds nothing gives an empty cell (kubectl prints ``<none>``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from landscape.kubeapi.kinds import Kind

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace.",
}
AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
}

_FILTER = re.compile(r"^\?\(@\.([A-Za-z0-9_.]+)\s*==\s*['\"]([^'\"]*)['\"]\)$")
_TOKEN = re.compile(r"\.([A-Za-z0-9_-]+)|\[([^\]]+)\]")


def wants_table(accept: str) -> bool:
    return "as=Table" in accept.replace(" ", "")


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The values a kubectl-style JSONPath (``.a.b``, ``[0]``, ``[*]``, ``[?(@.type=='Ready')]``) finds."""
    values = [obj]
    for field, index in _TOKEN.findall(path.strip().strip("{}")):
        nxt: list[Any] = []
        for v in values:
            if field:
                if isinstance(v, dict) and field in v:
                    nxt.append(v[field])
            elif isinstance(v, list):
                m = _FILTER.match(index.strip())
                if index.strip() == "*":
                    nxt += v
                elif m:
                    key, want = m.groups()
                    nxt += [i for i in v if [str(x) for x in jsonpath(i, "." + key)][:1] == [want]]
                elif index.strip().lstrip("-").isdigit() and -len(v) <= int(index) < len(v):
                    nxt.append(v[int(index)])
        values = nxt
    return values


def _age(value: str) -> str:
    try:
        then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = int((datetime.now(UTC) - then).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 3600 * 2:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _cell(obj: dict[str, Any], column: dict[str, Any]) -> Any:
    found = jsonpath(obj, column.get("jsonPath", ""))
    if not found:
        return None
    value = found[0]
    if column.get("type") == "date" and isinstance(value, str):
        return _age(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


def table(
    kind: Kind, objects: list[dict[str, Any]], resource_version: str, include: str = "Metadata"
) -> dict[str, Any]:
    columns = kind.columns or [AGE_COLUMN]
    definitions = [NAME_COLUMN] + [
        {
            "name": c["name"],
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": int(c.get("priority", 0)),
        }
        for c in columns
    ]
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [obj["metadata"]["name"], *(_cell(obj, c) for c in columns)]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
