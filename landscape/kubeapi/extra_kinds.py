"""Kinds other lifecycles need, with minimal schemas: IronCore metal objects.

Install with the plugin name ``landscape.kubeapi.extra_kinds``. The schemas check only what our
workflows rely on; the controllers that act on these kinds live with their lifecycles.
IronCore's metal-operator serves BMC, BMCSecret and Server cluster-scoped (as here).
"""

from __future__ import annotations

from typing import Any

from landscape.kubeapi import errors
from landscape.kubeapi.kinds import AdmissionRequest, Kind

METAL_GROUP = "metal.ironcore.dev"
METAL_VERSION = "v1alpha1"


def _require(req: AdmissionRequest, checks: list[tuple[str, bool, str]]) -> None:
    causes = [(f, "FieldValueRequired", msg) for f, ok, msg in checks if not ok]
    if causes:
        raise errors.invalid(req.kind.kind, req.kind.group, req.name, causes)


def _spec(req: AdmissionRequest) -> dict[str, Any]:
    spec = (req.new or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def validate_bmc(req: AdmissionRequest) -> None:
    if req.operation == "DELETE" or req.subresource:
        return
    spec = _spec(req)
    _require(
        req,
        [
            (
                "spec.bmcSecretRef.name",
                bool((spec.get("bmcSecretRef") or {}).get("name")),
                "Required value: the BMCSecret holding the credentials",
            ),
            (
                "spec.endpointRef",
                bool(spec.get("endpointRef") or (spec.get("access") or {}).get("address")),
                "Required value: spec.endpointRef or spec.access.address",
            ),
            (
                "spec.protocol.name",
                bool((spec.get("protocol") or {}).get("name")),
                "Required value: protocol name (Redfish)",
            ),
        ],
    )


def validate_bmc_secret(req: AdmissionRequest) -> None:
    if req.operation == "DELETE":
        return
    data = {**((req.new or {}).get("data") or {}), **((req.new or {}).get("stringData") or {})}
    _require(
        req,
        [
            ("data.username", "username" in data, "Required value"),
            ("data.password", "password" in data, "Required value"),
        ],
    )


def validate_server(req: AdmissionRequest) -> None:
    if req.operation == "DELETE" or req.subresource:
        return
    spec = _spec(req)
    _require(req, [("spec.uuid", bool(spec.get("uuid")), "Required value: the system UUID")])
    if req.old is not None and (req.old.get("spec") or {}).get("uuid") != spec.get("uuid"):
        raise errors.invalid(
            req.kind.kind,
            req.kind.group,
            req.name,
            [("spec.uuid", "FieldValueInvalid", "Invalid value: field is immutable")],
        )


def kinds() -> list[Kind]:
    return [
        Kind(METAL_GROUP, METAL_VERSION, "BMC", "bmcs", namespaced=False, validate=[validate_bmc]),
        Kind(
            METAL_GROUP,
            METAL_VERSION,
            "BMCSecret",
            "bmcsecrets",
            namespaced=False,
            status_subresource=False,
            validate=[validate_bmc_secret],
        ),
        Kind(METAL_GROUP, METAL_VERSION, "Server", "servers", namespaced=False, validate=[validate_server]),
    ]


def install(server: Any) -> None:
    for k in kinds():
        server.registry.register(k)
