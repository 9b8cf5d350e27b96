"""``gardener_select_shoots``: the targets of a rollout, by label selector, from the garden API."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gardener.client import GROUP, REQUEST_TIMEOUT, SHOOTS, VERSION, garden, raise_for
from definitions.rollout import SelectInput


@activity.defn(name="gardener_select_shoots")
async def select_shoots(inp: SelectInput) -> list[str]:
    """Shoot names, sorted (a stable wave order); shoots being deleted are left out. Nothing matched
    is an error a person must fix (the selector), so no rollout runs."""
    sel = inp.selector
    kwargs: dict[str, Any] = {"_request_timeout": REQUEST_TIMEOUT}
    if sel.match_labels:
        kwargs["label_selector"] = sel.label_selector()
    async with garden(inp.garden) as co:
        try:
            listed = await co.list_namespaced_custom_object(GROUP, VERSION, sel.namespace, SHOOTS, **kwargs)
        except ApiException as exc:
            raise_for(exc, f"listing shoots in {sel.namespace}")
            raise
    names = sorted(s["metadata"]["name"] for s in listed.get("items", []) if not s["metadata"].get("deletionTimestamp"))
    if sel.names is not None:
        names = [n for n in names if n in sel.names]
    if not names:
        raise ApplicationError(
            f"the selector matches no shoot in namespace {sel.namespace} "
            f"(labels {sel.label_selector() or 'any'}{', names ' + ', '.join(sel.names) if sel.names else ''}); "
            "nothing was started: fix the selector or the shoots' labels",
            type="SelectorMatchesNothing",
            non_retryable=True,
        )
    return names


ACTIVITIES = [select_shoots]
