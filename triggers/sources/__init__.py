"""The registry of webhook sources. A lifecycle that brings its own payload format registers it here
(or calls :func:`register_source` from its own module, listed in :data:`SOURCE_MODULES`)."""

from __future__ import annotations

from triggers.sources.alertmanager import AlertmanagerSource
from triggers.sources.base import Source
from triggers.sources.boot import BootCallbackSource
from triggers.sources.cloudevents import CloudEventsSource
from triggers.sources.pipeline import PipelineSource
from triggers.sources.registry import DockerRegistrySource

SOURCES: dict[str, Source] = {}


def register_source(source: Source, *, replace: bool = False) -> Source:
    if source.name in SOURCES and not replace:
        raise ValueError(f"webhook source {source.name!r} is already registered")
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown webhook source {name!r}; known: {', '.join(sorted(SOURCES))}") from None


for _source in (
    DockerRegistrySource(),
    AlertmanagerSource(),
    CloudEventsSource(),
    BootCallbackSource(),
    PipelineSource(),
):
    register_source(_source)

__all__ = ["SOURCES", "Source", "get_source", "register_source"]
