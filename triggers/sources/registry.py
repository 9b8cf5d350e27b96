"""Docker/OCI registry notifications (distribution 2.8, Debian ``docker-registry``).

The registry posts an envelope ``{"events": [...]}`` with media type
``application/vnd.docker.distribution.events.v1+json`` to each configured endpoint
(``notifications.endpoints[].url`` in its config.yml; ``headers`` there carries our bearer token,
since the registry cannot sign). A push of an OCM component version shows up as a manifest push to
``<prefix>/component-descriptors/<component name>`` tagged with the version (``+`` spelled ``.build-``).

Rules see, per event: ``id``, ``action`` (push/pull/delete/mount), ``repository``, ``tag``,
``digest``, ``media_type``, ``url``, ``registry`` (scheme://host:port of the notifying registry),
``prefix`` (repository path before ``component-descriptors``), ``component`` and ``version``
(empty unless the repository is an OCM component descriptor repository), ``actor``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from definitions.triggers import Rule
from triggers.events import Event
from triggers.sources.base import Source, parse_model, require_media_type

MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
MARKER = "/component-descriptors/"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RegistryTarget(_Open):
    media_type: str = Field(default="", alias="mediaType")
    size: int | None = None
    digest: str = ""
    length: int | None = None
    repository: str = ""
    url: str = ""
    tag: str = ""


class RegistryActor(_Open):
    name: str = ""


class RegistryRequest(_Open):
    id: str = ""
    addr: str = ""
    host: str = ""
    method: str = ""
    useragent: str = ""


class RegistryEvent(_Open):
    id: str = Field(min_length=1)
    timestamp: str = ""
    action: str = Field(min_length=1)
    target: RegistryTarget
    request: RegistryRequest = Field(default_factory=RegistryRequest)
    actor: RegistryActor = Field(default_factory=RegistryActor)
    source: dict[str, Any] = Field(default_factory=dict)


class RegistryEnvelope(_Open):
    """The body docker-registry posts: one or more events."""

    events: list[RegistryEvent]


def component_of(repository: str) -> tuple[str, str]:
    """(prefix, component name) for an OCM descriptor repository, else ("", "")."""
    probe = "/" + repository
    if MARKER not in probe:
        return "", ""
    prefix, _, component = probe.partition(MARKER)
    return prefix.strip("/"), component


class DockerRegistrySource(Source):
    name = "docker-registry"
    summary = "OCI registry push notifications (docker-registry / distribution)"
    description = __doc__ or ""
    payload_model = RegistryEnvelope
    content_types = (MEDIA_TYPE, "application/json")

    def default_rules(self) -> list[Rule]:
        return []  # where to copy to is site-specific: the route must say it

    def parse(self, body: bytes, headers: Mapping[str, str], path_params: Mapping[str, str]) -> list[Event]:
        require_media_type(headers, self.content_types)
        envelope = parse_model(body, RegistryEnvelope, "registry notification envelope")
        events = []
        for ev in envelope.events:
            prefix, component = component_of(ev.target.repository)
            parts = urlsplit(ev.target.url)
            registry = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
            version = ev.target.tag.replace(".build-", "+") if component else ""
            events.append(
                Event(
                    id=ev.id,
                    data={
                        "id": ev.id,
                        "action": ev.action,
                        "repository": ev.target.repository,
                        "tag": ev.target.tag,
                        "digest": ev.target.digest,
                        "media_type": ev.target.media_type,
                        "url": ev.target.url,
                        "registry": registry,
                        "prefix": prefix,
                        "component": component,
                        "version": version,
                        "actor": ev.actor.name,
                        "timestamp": ev.timestamp,
                    },
                )
            )
        return events
