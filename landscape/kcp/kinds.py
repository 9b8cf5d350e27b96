"""The kcp API kinds every workspace serves, as CustomResourceDefinitions of the landscape API server.

Their schemas are free-form (`x-kubernetes-preserve-unknown-fields`): the local kcp checks the fields
it acts on where it acts on them, and a client sees kcp's group, version, kind, scope and subresources.
"""

from __future__ import annotations

from typing import Any

TENANCY = "tenancy.kcp.io"
APIS = "apis.kcp.io"

#: (group, version, kind, plural, namespaced)
KINDS: tuple[tuple[str, str, str, str], ...] = (
    (TENANCY, "v1alpha1", "Workspace", "workspaces"),
    (APIS, "v1alpha1", "APIResourceSchema", "apiresourceschemas"),
    (APIS, "v1alpha2", "APIExport", "apiexports"),
    (APIS, "v1alpha2", "APIBinding", "apibindings"),
    (APIS, "v1alpha1", "APIExportEndpointSlice", "apiexportendpointslices"),
)


def crds() -> list[dict[str, Any]]:
    """One cluster-scoped CRD per kcp kind (kcp's own API objects are all cluster-scoped)."""
    free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    out = []
    for group, version, kind, plural in KINDS:
        out.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{group}", "labels": {"kcp.io/system": "true"}},
                "spec": {
                    "group": group,
                    "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
                    "scope": "Cluster",
                    "versions": [
                        {
                            "name": version,
                            "served": True,
                            "storage": True,
                            "subresources": {"status": {}},
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "properties": {
                                        "apiVersion": {"type": "string"},
                                        "kind": {"type": "string"},
                                        "metadata": {"type": "object"},
                                        "spec": free,
                                        "status": free,
                                    },
                                }
                            },
                        }
                    ],
                },
            }
        )
    return out
