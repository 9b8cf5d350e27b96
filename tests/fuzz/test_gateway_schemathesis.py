"""schemathesis against the webhook gateway's own OpenAPI document: whatever it is sent, the gateway
answers without a server error (5xx), except 503 with Retry-After when Temporal is unreachable, which
here it always is: so no generated request can start a workflow, and none crashes the process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (extra dev)")

from landscape.process import free_port  # noqa: E402
from tests.triggers_support import ENV, gateway_config, library, write_definitions  # noqa: E402
from triggers.app import create_app  # noqa: E402
from triggers.dispatch import LibraryCache, Planner  # noqa: E402
from triggers.temporal import TemporalConnection  # noqa: E402
from workers.config import TemporalSettings  # noqa: E402

pytestmark = pytest.mark.fuzz

for _k, _v in ENV.items():
    os.environ.setdefault(_k, _v)
_DEFS = Path(tempfile.mkdtemp(prefix="apeiro-schemathesis-"))
_DEAD = TemporalSettings(address=f"127.0.0.1:{free_port()}")
APP = create_app(
    gateway_config(),
    temporal=TemporalConnection(lambda: _DEAD),
    planner=Planner(LibraryCache(library(write_definitions(_DEFS)))),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_gateway_never_answers_with_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    if response.status_code == 503:
        assert "retry-after" in {k.lower() for k in response.headers}, response.text
    else:
        assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and body, "errors carry a reason"
