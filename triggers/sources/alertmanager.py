"""Prometheus Alertmanager webhooks (``webhook_configs``, payload version 4).

Alertmanager groups alerts and re-sends a group on every ``repeat_interval``; each alert in a group
becomes one event whose id is ``<fingerprint>-<startsAt>``, so repeats and resends of the same
firing start nothing new, while the same alert firing again later (a new ``startsAt``) does.
Alertmanager authenticates with ``http_config.authorization`` (bearer) in its receiver.

Rules see, per alert: ``status`` (firing/resolved), ``labels``, ``annotations``, ``startsAt``,
``endsAt``, ``fingerprint``, ``generatorURL``, and of the group ``receiver``, ``groupKey``,
``groupLabels``, ``commonLabels``, ``externalURL``. Typical rule:
``when: event.status == "firing" && event.labels.alertname == "BmcUnresponsive"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from triggers.events import Event
from triggers.sources.base import Source, parse_model, require_media_type


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Alert(_Open):
    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(default="", alias="startsAt")
    ends_at: str = Field(default="", alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""


class AlertmanagerPayload(_Open):
    version: str = "4"
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    status: str = Field(pattern="^(firing|resolved)$")
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[Alert] = Field(min_length=1)


def alert_fingerprint(alert: Alert) -> str:
    if alert.fingerprint:
        return alert.fingerprint
    canonical = json.dumps(sorted(alert.labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class AlertmanagerSource(Source):
    name = "alertmanager"
    summary = "Prometheus Alertmanager webhook (remediation chosen by alert labels)"
    description = __doc__ or ""
    payload_model = AlertmanagerPayload
    content_types = ("application/json",)

    def parse(self, body: bytes, headers: Mapping[str, str], path_params: Mapping[str, str]) -> list[Event]:
        require_media_type(headers, self.content_types)
        payload = parse_model(body, AlertmanagerPayload, "Alertmanager webhook payload")
        events = []
        for alert in payload.alerts:
            fp = alert_fingerprint(alert)
            events.append(
                Event(
                    id=f"{fp}-{alert.starts_at}",
                    data={
                        "status": alert.status,
                        "labels": alert.labels,
                        "annotations": alert.annotations,
                        "startsAt": alert.starts_at,
                        "endsAt": alert.ends_at,
                        "fingerprint": fp,
                        "generatorURL": alert.generator_url,
                        "receiver": payload.receiver,
                        "groupKey": payload.group_key,
                        "groupLabels": payload.group_labels,
                        "commonLabels": payload.common_labels,
                        "externalURL": payload.external_url,
                    },
                )
            )
        return events
