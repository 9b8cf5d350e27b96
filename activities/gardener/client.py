"""Garden connection and error classification shared by the gardener activities."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from activities.gardener.connections import shared_api
from activities.secrets import resolve_secret
from definitions.cluster import GardenRef
from definitions.yamlfiles import YamlProblem, parse_yaml

GROUP, VERSION, SHOOTS, PROFILES = "core.gardener.cloud", "v1beta1", "shoots", "cloudprofiles"
MERGE = "application/merge-patch+json"
APPLY = "application/apply-patch+yaml"
FIELD_MANAGER = "apeiro"
REQUEST_TIMEOUT = 30


def _kubeconfig_text(ref: GardenRef) -> str:
    try:
        if ref.kubeconfig_ref:
            return resolve_secret(ref.kubeconfig_ref)
        path = os.environ.get("APEIRO_GARDEN_KUBECONFIG")
        if not path:
            raise ApplicationError(
                "no garden kubeconfig: set garden.kubeconfig_ref (env:/file:/k8s:) in the input or "
                "APEIRO_GARDEN_KUBECONFIG on the worker",
                type="GardenConfigError",
                non_retryable=True,
            )
        return Path(path).read_text()
    except OSError as exc:
        raise ApplicationError(f"garden kubeconfig: {exc}", type="GardenConfigError", non_retryable=True) from None


def _parse_kubeconfig(text: str) -> dict[str, Any]:
    try:
        data = parse_yaml(text)
    except YamlProblem as exc:
        raise ApplicationError(f"garden kubeconfig: {exc}", type="GardenConfigError", non_retryable=True) from None
    if not isinstance(data, dict) or "clusters" not in data:
        raise ApplicationError(
            "the garden kubeconfig is not a kubeconfig (no clusters)",
            type="GardenConfigError",
            non_retryable=True,
        )
    return data


@contextlib.asynccontextmanager
async def garden(ref: GardenRef) -> AsyncIterator[client.CustomObjectsApi]:
    """The garden's custom-objects API, on the client this worker shares for that kubeconfig
    (activities/gardener/connections.py: a new client per activity cost ~30 ms of the event loop)."""
    async with shared_api(_kubeconfig_text(ref), _parse_kubeconfig) as api:
        yield client.CustomObjectsApi(api)


def status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, TypeError):
        return str(exc.reason)


def is_transient(exc: ApiException) -> bool:
    return exc.status in (409, 429) or (exc.status or 0) >= 500 or exc.status == 0


def rejected(exc: ApiException, what: str) -> ApplicationError:
    """A 4xx the garden will answer the same way next time: non-retryable, with the server's reason."""
    return ApplicationError(
        f"{what} rejected by the garden ({exc.status}): {status_message(exc)}",
        type="ShootRejected",
        non_retryable=True,
    )


def raise_for(exc: ApiException, what: str) -> None:
    """Re-raise transient errors for Temporal to retry; turn the rest into non-retryable errors."""
    if is_transient(exc):
        raise exc
    raise rejected(exc, what) from None


async def get_shoot(co: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = await co.get_namespaced_custom_object(
            GROUP, VERSION, namespace, SHOOTS, name, _request_timeout=REQUEST_TIMEOUT
        )
        return obj
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise_for(exc, f"reading shoot {namespace}/{name}")
        raise


async def get_profile(co: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    try:
        obj: dict[str, Any] = await co.get_cluster_custom_object(
            GROUP, VERSION, PROFILES, name, _request_timeout=REQUEST_TIMEOUT
        )
        return obj
    except ApiException as exc:
        if exc.status == 404:
            raise ApplicationError(
                f"cloud profile {name!r} does not exist in the garden",
                type="UpgradeNotPossible",
                non_retryable=True,
            ) from None
        raise_for(exc, f"reading cloud profile {name}")
        raise


async def patch_shoot_body(
    co: client.CustomObjectsApi, namespace: str, name: str, body: Any, content_type: str
) -> dict[str, Any]:
    """PATCH with an explicit content type (kubernetes_asyncio turns a dict into a JSON patch otherwise;
    its type stubs lack ``_content_type``, hence the kwargs)."""
    kwargs: dict[str, Any] = {
        "_content_type": content_type,
        "field_manager": FIELD_MANAGER,
        "_request_timeout": REQUEST_TIMEOUT,
    }
    obj: dict[str, Any] = await co.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, SHOOTS, name, body, **kwargs
    )
    return obj
