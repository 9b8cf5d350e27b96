"""The Redfish plumbing every concern shares: one system behind one BMC, read as plain JSON.

Reads go through sushy's connector as plain JSON documents rather than sushy's resource classes:
real BMCs omit, misspell or 501 whole parts, and the inventory must record those as unknown instead
of failing on sushy's strict parsing. Writes are the standard Redfish actions.
"""

from __future__ import annotations

from typing import Any

import sushy
from sushy import exceptions as sx

#: HTTP codes that mean "this BMC does not have that part": recorded as unknown, not an error.
#: 503 and connection errors are *not* here: they are transient and must fail the activity (retry).
ABSENT_CODES = {400, 404, 405, 500, 501}


class PartUnknown(Exception):
    """A part the BMC does not provide; carries the reason recorded in the inventory."""


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _link(doc: dict[str, Any], *keys: str) -> str | None:
    cur: Any = doc
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    if isinstance(cur, dict):
        odata = cur.get("@odata.id")
        return odata if isinstance(odata, str) else None
    return None


class RedfishSystem:
    """One system behind one BMC: GETs that turn absent parts into :class:`PartUnknown`."""

    def __init__(self, root: sushy.Sushy, bmc_url: str, system_path: str) -> None:
        self.root = root
        self.conn = root._conn
        self.bmc_url = bmc_url
        self.system_path = system_path

    def get(self, path: str) -> dict[str, Any]:
        data: dict[str, Any] = self.conn.get(path).json()
        return data

    def get_part(self, path: str | None, what: str) -> dict[str, Any]:
        if not path:
            raise PartUnknown(f"the BMC links no {what}")
        try:
            return self.get(path)
        except sx.HTTPError as exc:
            if exc.status_code in ABSENT_CODES:
                raise PartUnknown(f"GET {path}: HTTP {exc.status_code}") from None
            raise

    def members(self, path: str | None, what: str) -> list[dict[str, Any]]:
        coll = self.get_part(path, what)
        out = []
        for m in coll.get("Members", []):
            ref = m.get("@odata.id") if isinstance(m, dict) else None
            if not ref:
                continue
            try:
                out.append(self.get_part(ref, what))
            except PartUnknown:
                continue
        return out

    def system(self) -> dict[str, Any]:
        return self.get(self.system_path)


def list_system_paths(root: sushy.Sushy) -> list[str]:
    coll: dict[str, Any] = root._conn.get(root._systems_path or "/redfish/v1/Systems").json()
    return [m["@odata.id"] for m in coll.get("Members", []) if isinstance(m, dict) and "@odata.id" in m]
