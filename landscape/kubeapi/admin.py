"""A Python API for the server's admin endpoints (fault injection, compaction, controller settings)."""

from __future__ import annotations

from typing import Any

import httpx

from landscape.kubeapi.faults import FaultSpec


class KubeApiAdmin:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.client.post(path, json=body or {})
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def inject(self, code: int, **where: Any) -> int:
        """Answer the next ``count`` matching requests with ``code`` (409/429/503...); ``where`` takes the
        other fields of :class:`~landscape.kubeapi.faults.FaultSpec` (count, verbs, resource, namespace,
        name, subresource, retry_after). Verbs default to the write verbs."""
        return int(self._post("/admin/faults", FaultSpec(code, **where).to_json())["id"])

    def clear_faults(self) -> None:
        self.client.delete("/admin/faults").raise_for_status()

    def faults(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self.client.get("/admin/faults").json()["rules"]
        return rules

    def cut_watches(self, mode: str = "reset") -> int:
        """Cut every open watch now (``reset`` aborts the connection, ``close`` ends it cleanly)."""
        return int(self._post("/admin/watches/cut", {"mode": mode})["cut"])

    def cut_next_watch(
        self, after_events: int, watches: int = 1, resource: str | None = None, mode: str = "reset"
    ) -> None:
        self._post(
            "/admin/watches/cut-after",
            {"afterEvents": after_events, "watches": watches, "resource": resource, "mode": mode},
        )

    def compact(self) -> int:
        return int(self._post("/admin/compact")["floor"])

    def settings(self, **body: Any) -> dict[str, Any]:
        return self._post("/admin/settings", body)

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.client.get("/admin/stats").json()
        return data

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Plugin admin endpoints (e.g. `/admin/gardener/faults`)."""
        return self._post(path, body)

    def get(self, path: str) -> Any:
        resp = self.client.get(path)
        resp.raise_for_status()
        return resp.json()
