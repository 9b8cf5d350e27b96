"""What a provider applies to offer our API on the Platform Mesh, generated from the models.

Two forms:

- `kcp` (the provider has a kcp workspace): one `APIResourceSchema` per kind, named
  `<prefix>.<plural>.<group>` with a prefix derived from the schema's content (APIResourceSchemas
  are immutable in kcp, so a changed schema must get a new name); an `APIExport`
  (`apis.kcp.io/v1alpha2`, every resource with CRD storage, a permission claim on `events`); the
  `APIExportEndpointSlice` the controller reads its virtual workspace URL from; `ProviderMetadata`
  and `ContentConfiguration` (`ui.platform-mesh.io/v1alpha1`) for the marketplace and portal, linked
  to the export by name and by the `ui.platform-mesh.io/content-for` label; and the ClusterRole
  that lets consumers `bind` the export.
- `syncagent` (the provider runs a Kubernetes cluster and kcp-dev/api-syncagent): the
  CustomResourceDefinitions for the service cluster and one `PublishedResource` per kind.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from definitions.mesh import API_VERSION, EXPORT_NAME, GROUP, VERSION, Kind, OrderStatus, PipelineRunSpec, kinds
from definitions.mesh_schema import structural

KCP_SCHEMA_API = "apis.kcp.io/v1alpha1"
KCP_EXPORT_API = "apis.kcp.io/v1alpha2"
UI_API = "ui.platform-mesh.io/v1alpha1"
CONTENT_FOR = "ui.platform-mesh.io/content-for"
PART_OF = "app.kubernetes.io/part-of"
LABELS = {PART_OF: "apeiro-orchestrator", "app.kubernetes.io/managed-by": "apeiro-mesh-manifests"}
#: What the controller may do with Events in consumer workspaces (one per step transition).
EVENT_VERBS = ["create", "patch", "get", "list", "watch"]


def open_api_schema(kind: Kind) -> dict[str, Any]:
    """The openAPIV3Schema of one kind: apiVersion/kind/metadata, spec from its model, status."""
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec_schema(kind),
    }
    if kind.orderable:
        properties["status"] = structural(OrderStatus, description="Written by the provider's controller.")
    return {"type": "object", "description": kind.description, "properties": properties, "required": ["spec"]}


def spec_schema(kind: Kind) -> dict[str, Any]:
    """The spec's schema; a lifecycle kind also takes `approvals` (the controller strips them off)."""
    spec = structural(kind.spec_model, description=kind.description)
    if kind.step_type is not None:
        approvals = structural(PipelineRunSpec)["properties"]["approvals"]
        spec.setdefault("properties", {})["approvals"] = approvals
    return spec


def _version(kind: Kind) -> dict[str, Any]:
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True, "schema": open_api_schema(kind)}
    if kind.orderable:
        version["subresources"] = {"status": {}}
        version["additionalPrinterColumns"] = [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Workflow", "type": "string", "jsonPath": ".status.workflowId", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]
    return version


def _names(kind: Kind) -> dict[str, Any]:
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
        "categories": ["apeiro"],
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    return names


def schema_name(kind: Kind) -> str:
    """`<prefix>.<plural>.<group>`: the prefix is `v` + 10 hex digits of the schema's own hash."""
    body = json.dumps([_names(kind), kind.scope, _version(kind)], sort_keys=True).encode()
    return f"v{hashlib.sha256(body).hexdigest()[:10]}.{kind.resource}"


def api_resource_schema(kind: Kind) -> dict[str, Any]:
    return {
        "apiVersion": KCP_SCHEMA_API,
        "kind": "APIResourceSchema",
        "metadata": {"name": schema_name(kind), "labels": dict(LABELS)},
        "spec": {"group": GROUP, "names": _names(kind), "scope": kind.scope, "versions": [_version(kind)]},
    }


def api_export() -> dict[str, Any]:
    return {
        "apiVersion": KCP_EXPORT_API,
        "kind": "APIExport",
        "metadata": {"name": EXPORT_NAME, "labels": {**LABELS, CONTENT_FOR: EXPORT_NAME}},
        "spec": {
            "resources": [
                {"group": GROUP, "name": k.plural, "schema": schema_name(k), "storage": {"crd": {}}} for k in kinds()
            ],
            "permissionClaims": [{"group": "", "resource": "events", "verbs": list(EVENT_VERBS)}],
        },
    }


def endpoint_slice(provider_path: str) -> dict[str, Any]:
    return {
        "apiVersion": KCP_SCHEMA_API,
        "kind": "APIExportEndpointSlice",
        "metadata": {"name": EXPORT_NAME, "labels": dict(LABELS)},
        "spec": {"export": {"path": provider_path, "name": EXPORT_NAME}},
    }


def provider_metadata() -> dict[str, Any]:
    return {
        "apiVersion": UI_API,
        "kind": "ProviderMetadata",
        "metadata": {"name": EXPORT_NAME, "labels": dict(LABELS)},
        "spec": {
            "displayName": "Apeiro Lifecycle Orchestrator",
            "description": "Order durable lifecycles of an edge landscape: pipelines, cluster upgrades, "
            "server provisioning, OCM component transports and ring-based release promotions.",
            "contacts": [{"displayName": "Apeiro orchestrator maintainers", "role": ["Maintainer"]}],
            "preferredSupportChannels": [{"displayName": "Issues", "url": "https://apeiro.dev/orchestrator"}],
        },
    }


def content_configuration() -> dict[str, Any]:
    nodes = [
        {
            "pathSegment": k.plural,
            "label": k.kind,
            "entityType": "main.core_platform-mesh_io_account",
            "order": 900 + i,
            "hideFromNav": not k.orderable,
        }
        for i, k in enumerate(kinds())
    ]
    fragment = {"name": "apeiro-orchestrator", "luigiConfigFragment": {"data": {"nodes": nodes}}}
    return {
        "apiVersion": UI_API,
        "kind": "ContentConfiguration",
        "metadata": {
            "name": "apeiro-orchestrator-ui",
            "labels": {
                **LABELS,
                CONTENT_FOR: EXPORT_NAME,
                "ui.platform-mesh.io/entity": "core_platform-mesh_io_account",
            },
        },
        "spec": {"inlineConfiguration": {"contentType": "json", "content": json.dumps(fragment, indent=2)}},
    }


def bind_cluster_role() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "apeiro-orchestrator-apiexport-bind", "labels": dict(LABELS)},
        "rules": [
            {
                "apiGroups": ["apis.kcp.io"],
                "resources": ["apiexports"],
                "verbs": ["bind"],
                "resourceNames": [EXPORT_NAME],
            }
        ],
    }


def kcp_manifests(provider_path: str = "root:providers:apeiro") -> list[dict[str, Any]]:
    """Everything the provider applies into its kcp workspace, in apply order."""
    return [
        *(api_resource_schema(k) for k in kinds()),
        api_export(),
        endpoint_slice(provider_path),
        provider_metadata(),
        content_configuration(),
        bind_cluster_role(),
    ]


def crd(kind: Kind) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.resource, "labels": dict(LABELS)},
        "spec": {"group": GROUP, "names": _names(kind), "scope": kind.scope, "versions": [_crd_version(kind)]},
    }


def _crd_version(kind: Kind) -> dict[str, Any]:
    version = _version(kind)
    version["schema"] = {"openAPIV3Schema": version["schema"]}  # a CRD wraps it, an APIResourceSchema does not
    return version


def published_resource(kind: Kind) -> dict[str, Any]:
    return {
        "apiVersion": "syncagent.kcp.io/v1alpha1",
        "kind": "PublishedResource",
        "metadata": {"name": f"publish-{kind.plural}", "labels": dict(LABELS)},
        "spec": {"resource": {"apiGroup": GROUP, "versions": [VERSION], "kind": kind.kind}},
    }


def syncagent_manifests() -> list[dict[str, Any]]:
    """For a provider without kcp access: CRDs on its service cluster, each published by the agent."""
    return [*(crd(k) for k in kinds()), *(published_resource(k) for k in kinds())]


def catalog_objects(pipelines: list[Any]) -> list[dict[str, Any]]:
    """`Pipeline` catalogue objects from validated pipeline definitions (definitions.pipeline.Pipeline)."""
    out = []
    for p in sorted(pipelines, key=lambda p: p.name):
        inputs = {
            name: {k: v for k, v in spec.model_dump(mode="json", by_alias=True).items() if v not in (None, "")}
            for name, spec in p.spec.inputs.items()
        }
        out.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Pipeline",
                "metadata": {"name": p.name, "labels": dict(LABELS)},
                "spec": {
                    "description": p.spec.description,
                    "inputs": inputs,
                    "steps": [s.name for s in p.spec.steps],
                },
            }
        )
    return out
