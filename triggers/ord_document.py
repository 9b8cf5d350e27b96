"""Our Open Resource Discovery (ORD) documents, built from what the product really serves.

- the ORD configuration (`/.well-known/open-resource-discovery`) lists one document;
- the document describes: the webhook intake and the gateway's operational API (OpenAPI v3, taken
  from the running gateway's own OpenAPI), the KRM API consumers order through on the Platform Mesh
  (OpenAPI v3 generated from the same structural schemas as the APIResourceSchemas), and the run
  events the mesh controller emits per step transition (AsyncAPI 2);
- every resource is part of one package; the webhook intake is in a consumption bundle that says how
  callers authenticate (HMAC signatures or bearer tokens, per route).
"""

from __future__ import annotations

from typing import Any

ORD_VERSION = "1.9"
NS = "apeiro.orchestrator"
VENDOR = "apeiro:vendor:Apeiro:"
PRODUCT = "apeiro:product:LifecycleOrchestrator:"
PACKAGE = f"{NS}:package:orchestrator:v1"
WEBHOOK_BUNDLE = f"{NS}:consumptionBundle:webhooks:v1"
BASE = "/open-resource-discovery/v1"
DOCUMENT_URL = f"{BASE}/documents/orchestrator"
DEFINITIONS = {
    "webhooks": f"{BASE}/definitions/webhooks.openapi.json",
    "gateway": f"{BASE}/definitions/gateway.openapi.json",
    "krm": f"{BASE}/definitions/krm.openapi.json",
    "events": f"{BASE}/definitions/run-events.asyncapi.json",
}
OPERATIONS_TAG = "gateway"


def configuration(base_url: str) -> dict[str, Any]:
    return {
        "$schema": "https://open-resource-discovery.github.io/specification/spec-v1/interfaces/Configuration.schema.json",
        "baseUrl": base_url.rstrip("/"),
        "openResourceDiscoveryV1": {"documents": [{"url": DOCUMENT_URL, "accessStrategies": [{"type": "open"}]}]},
    }


def _definition(kind: str, media: str, url: str) -> dict[str, Any]:
    return {"type": kind, "mediaType": media, "url": url, "accessStrategies": [{"type": "open"}]}


def _api(
    name: str,
    title: str,
    short: str,
    description: str,
    version: str,
    status: str,
    definition: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "ordId": f"{NS}:apiResource:{name}:v{version.split('.')[0]}",
        "title": title,
        "shortDescription": short,
        "description": description,
        "version": version,
        "releaseStatus": status,
        "visibility": "public",
        "partOfPackage": PACKAGE,
        "apiProtocol": "rest",
        "resourceDefinitions": [definition],
        **extra,
    }


def document(kinds: list[str]) -> dict[str, Any]:
    """The ORD document; `kinds` are the KRM kinds we export (named in the description)."""
    webhooks = _api(
        "webhooks",
        "Webhook intake",
        "Start and signal lifecycle workflows from webhooks.",
        "Registry pushes, Alertmanager alerts, CI releases and OS boot callbacks start or signal durable "
        "workflows. Each route answers 202 with the workflow ids it started (idempotent per event id).",
        "1.0.0",
        "active",
        _definition("openapi-v3", "application/json", DEFINITIONS["webhooks"]),
        direction="inbound",
        entryPoints=["/"],
        partOfConsumptionBundles=[{"ordId": WEBHOOK_BUNDLE}],
    )
    gateway = _api(
        "gateway",
        "Gateway operations",
        "Health and readiness of the webhook gateway.",
        "Liveness (`/healthz`) and readiness (`/readyz`: Temporal answers now) of the webhook gateway.",
        "1.0.0",
        "active",
        _definition("openapi-v3", "application/json", DEFINITIONS["gateway"]),
        entryPoints=["/"],
    )
    krm = _api(
        "krm",
        "Orchestrator KRM API (orchestrator.apeiro.dev)",
        "Order pipelines and lifecycles as Kubernetes resources on the Platform Mesh.",
        "Bind the APIExport orchestrator.apeiro.dev in a kcp workspace and create "
        + ", ".join(kinds)
        + " objects; the provider's controller runs each as a durable workflow and writes status "
        "(phase, conditions Ready/Succeeded/AwaitingApproval, steps) and Events back.",
        "0.1.0",
        "beta",
        _definition("openapi-v3", "application/json", DEFINITIONS["krm"]),
        implementationStandard="custom",
        customImplementationStandard=f"{NS}:kubernetes-resource-model:v1",
        customImplementationStandardDescription="Kubernetes Resource Model served through a kcp APIExport.",
    )
    events = {
        "ordId": f"{NS}:eventResource:run-events:v1",
        "title": "Pipeline run events",
        "shortDescription": "One event per step transition of an ordered run.",
        "description": "Kubernetes Events in the consumer's workspace (involvedObject: the order), one per "
        "step state change: pending, running, waiting, succeeded, failed, skipped, cancelled.",
        "version": "1.0.0",
        "releaseStatus": "beta",
        "visibility": "public",
        "partOfPackage": PACKAGE,
        "resourceDefinitions": [_definition("asyncapi-v2", "application/json", DEFINITIONS["events"])],
    }
    return {
        "$schema": "https://open-resource-discovery.github.io/specification/spec-v1/interfaces/Document.schema.json",
        "openResourceDiscovery": ORD_VERSION,
        "description": "Apeiro lifecycle orchestrator: APIs and events",
        "policyLevel": "none",
        "vendors": [{"ordId": VENDOR, "title": "Apeiro"}],
        "products": [
            {
                "ordId": PRODUCT,
                "title": "Apeiro Lifecycle Orchestrator",
                "shortDescription": "Durable lifecycles for an edge landscape.",
                "vendor": VENDOR,
            }
        ],
        "packages": [
            {
                "ordId": PACKAGE,
                "title": "Apeiro Lifecycle Orchestrator",
                "shortDescription": "Webhook, REST and KRM APIs and run events of the orchestrator.",
                "description": "Everything a consumer uses to order and follow server, cluster, component and "
                "promotion lifecycles and pipelines composed of them.",
                "version": "1.0.0",
                "vendor": VENDOR,
                "partOfProducts": [PRODUCT],
            }
        ],
        "consumptionBundles": [
            {
                "ordId": WEBHOOK_BUNDLE,
                "title": "Webhook callers",
                "shortDescription": "Callers authenticate per route: HMAC signature or bearer token.",
                "version": "1.0.0",
                "credentialExchangeStrategies": [
                    {
                        "type": "custom",
                        "customType": f"{NS}:webhook-secret:v1",
                        "customDescription": "A shared secret per route, configured in the gateway's "
                        "webhooks.yaml by reference; signatures are checked over the raw body.",
                    }
                ],
            }
        ],
        "apiResources": [webhooks, gateway, krm],
        "eventResources": [events],
    }


def split_openapi(doc: dict[str, Any], operations: bool) -> dict[str, Any]:
    """The gateway's OpenAPI restricted to its operational paths, or to its webhook routes."""

    def wanted(op: dict[str, Any]) -> bool:
        return (OPERATIONS_TAG in (op.get("tags") or [])) == operations

    paths = {}
    for path, item in (doc.get("paths") or {}).items():
        ops = {m: op for m, op in item.items() if isinstance(op, dict) and wanted(op)}
        if ops:
            paths[path] = ops
    return {**doc, "paths": paths}


def krm_openapi(
    schemas: dict[str, dict[str, Any]], group: str, version: str, namespaced: dict[str, bool], plurals: dict[str, str]
) -> dict[str, Any]:
    """OpenAPI 3 for our kinds as a Kubernetes API server serves them (per workspace)."""
    paths: dict[str, Any] = {}
    for kind in schemas:
        plural = plurals[kind]
        ref = {"$ref": f"#/components/schemas/{kind}"}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        base = (
            f"/apis/{group}/{version}/namespaces/{{namespace}}/{plural}"
            if namespaced[kind]
            else f"/apis/{group}/{version}/{plural}"
        )
        params = (
            [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}]
            if namespaced[kind]
            else []
        )
        name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
        paths[base] = {
            "parameters": params,
            "get": {"operationId": f"list{kind}", "responses": {"200": {"description": "a list"}}},
            "post": {
                "operationId": f"create{kind}",
                "requestBody": {"content": {"application/json": {"schema": ref}}},
                "responses": {"201": ok["200"]},
            },
        }
        paths[base + "/{name}"] = {
            "parameters": params + name,
            "get": {"operationId": f"read{kind}", "responses": ok},
            "put": {
                "operationId": f"replace{kind}",
                "requestBody": {"content": {"application/json": {"schema": ref}}},
                "responses": ok,
            },
            "delete": {"operationId": f"delete{kind}", "responses": {"200": {"description": "deleted or deleting"}}},
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{group} ({version})", "version": version},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def run_events_asyncapi(step_states: list[str]) -> dict[str, Any]:
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "Apeiro pipeline run events", "version": "1.0.0"},
        "channels": {
            "workspaces/{workspace}/namespaces/{namespace}/events": {
                "parameters": {
                    "workspace": {"schema": {"type": "string"}},
                    "namespace": {"schema": {"type": "string"}},
                },
                "subscribe": {
                    "operationId": "stepTransition",
                    "message": {"$ref": "#/components/messages/StepTransition"},
                },
            }
        },
        "components": {
            "messages": {
                "StepTransition": {
                    "name": "StepTransition",
                    "contentType": "application/json",
                    "payload": {
                        "type": "object",
                        "required": ["involvedObject", "reason", "message", "type"],
                        "properties": {
                            "involvedObject": {
                                "type": "object",
                                "properties": {
                                    k: {"type": "string"} for k in ("apiVersion", "kind", "name", "namespace", "uid")
                                },
                            },
                            "reason": {"type": "string", "enum": ["Step" + s.capitalize() for s in step_states]},
                            "message": {"type": "string"},
                            "type": {"type": "string", "enum": ["Normal", "Warning"]},
                            "firstTimestamp": {"type": "string", "format": "date-time"},
                        },
                    },
                }
            }
        },
    }
