"""`pipeline.pin_definition`: resolve a pipeline's step types and literal sub-pipelines once, at start.

An activity, not workflow code, on purpose: its result is recorded in the run's history, so a replay
on a later build (another registry, other pipeline files) reads the same resolution instead of
computing a new one, and the run keeps doing what it started doing (definitions/pinning.py).
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from definitions.catalog import load_catalog
from definitions.library import PipelineLibrary
from definitions.pinning import MAX_PINNED_SUB_PIPELINES, PinnedDefinition, PinRequest, literal_sub_pipelines, pin
from definitions.validate import DefinitionError


@activity.defn(name="pipeline.pin_definition")
async def pin_definition(request: PinRequest) -> PinnedDefinition:
    """Sub-pipelines are loaded level by level (at most MAX_PINNED_SUB_PIPELINES); one that cannot be
    loaded now stays unpinned and is loaded when its step runs, failing there with the reason."""
    registry = load_catalog()
    library = PipelineLibrary()
    known = dict(request.inherited.sub_pipelines) if request.inherited else {}
    subs: dict[str, dict[str, Any]] = {}
    seen: set[str] = set(known)
    level = [n for n in literal_sub_pipelines(request.definition, registry) if n not in seen]
    while level and len(seen) < MAX_PINNED_SUB_PIPELINES + len(known):
        nxt: list[str] = []
        for name in level:
            seen.add(name)
            try:
                subs[name] = library.load(name)
            except (DefinitionError, OSError):
                continue
            nxt += [n for n in literal_sub_pipelines(subs[name], registry) if n not in seen and n not in nxt]
        level = nxt
    return pin(request.definition, registry, subs, inherited=request.inherited)
