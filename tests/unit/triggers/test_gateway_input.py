"""Every bad-input path of the gateway answers 4xx with a reason, before Temporal is touched; Temporal
unreachable answers 503 with Retry-After. Temporal here is an address where nothing listens."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.triggers_support import (
    HOOK_KEY_NEW,
    alert_payload,
    asgi_client,
    bearer,
    cloud_event,
    gateway_app,
    registry_envelope,
    signed,
)


@pytest.fixture
async def gw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(gateway_app(tmp_path, monkeypatch)) as client:
        yield client


def _reason(resp: httpx.Response) -> str:
    body = resp.json()
    assert body["accepted"] is False and body["status"] == resp.status_code
    return str(body["error"])


async def test_bad_signature(gw: httpx.AsyncClient) -> None:
    req = signed({"inputs": {"message": "hi"}}, key="wrong-key")
    resp = await gw.post("/hooks/pipelines/hook-echo", **req)
    assert resp.status_code == 401
    assert "does not match" in _reason(resp)


async def test_missing_signature_and_garbled_header(gw: httpx.AsyncClient) -> None:
    resp = await gw.post("/hooks/pipelines/hook-echo", content=b"{}", headers={"content-type": "application/json"})
    assert resp.status_code == 401 and "missing signature" in _reason(resp)
    resp = await gw.post(
        "/hooks/pipelines/hook-echo",
        content=b"{}",
        headers={"content-type": "application/json", "x-apeiro-signature": "sha256=abc"},
    )
    assert resp.status_code == 401 and "t=<unix seconds>" in _reason(resp)


async def test_stale_and_future_timestamps(gw: httpx.AsyncClient) -> None:
    for skew in (-301, 3600):
        req = signed({"inputs": {"message": "hi"}}, timestamp=int(time.time()) + skew)
        resp = await gw.post("/hooks/pipelines/hook-echo", **req)
        assert resp.status_code == 401
        assert "outside the 300 s window" in _reason(resp)


async def test_body_tampered_after_signing(gw: httpx.AsyncClient) -> None:
    req = signed({"inputs": {"message": "hi"}})
    req["content"] = req["content"].replace(b"hi", b"ho")
    resp = await gw.post("/hooks/pipelines/hook-echo", **req)
    assert resp.status_code == 401


async def test_bearer_missing_and_wrong(gw: httpx.AsyncClient) -> None:
    body = json.dumps(registry_envelope("e1", action="pull")).encode()
    resp = await gw.post("/hooks/registry", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    resp = await gw.post("/hooks/registry", **bearer(body, token="nope"))
    assert resp.status_code == 401 and "not accepted" in _reason(resp)


async def test_valid_credentials_reach_the_rules(gw: httpx.AsyncClient) -> None:
    # A pull matches no rule: 202 with nothing started, so Temporal (unreachable here) is not needed.
    resp = await gw.post("/hooks/registry", **bearer(registry_envelope("e1", action="pull")))
    assert resp.status_code == 202, resp.text
    assert resp.json()["workflows"] == [] and resp.json()["ignored"][0]["event_id"] == "e1"


async def test_rotated_key_is_accepted(gw: httpx.AsyncClient) -> None:
    # The route lists both keys; a sender already on the new key passes authentication (and is then refused
    # for its unknown pipeline, which shows it got past the signature check).
    resp = await gw.post("/hooks/pipelines/no-such", **signed({"inputs": {}}, key=HOOK_KEY_NEW))
    assert resp.status_code == 404


async def test_oversized_body(gw: httpx.AsyncClient) -> None:
    big = {"inputs": {"message": "x" * 5000}}
    resp = await gw.post("/hooks/pipelines/hook-echo", **signed(big))
    assert resp.status_code == 413 and "4096" in _reason(resp)
    # Without Content-Length (chunked): counted while reading.

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 100

    resp = await gw.post("/hooks/open/hook-echo", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "256" in _reason(resp)


async def test_wrong_content_type(gw: httpx.AsyncClient) -> None:
    resp = await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {}}, content_type="text/plain"))
    assert resp.status_code == 415 and "application/json" in _reason(resp)
    resp = await gw.post("/hooks/registry", **bearer(registry_envelope("e1"), content_type="application/xml"))
    assert resp.status_code == 415


async def test_not_json(gw: httpx.AsyncClient) -> None:
    resp = await gw.post("/hooks/pipelines/hook-echo", **signed(b"{not json"))
    assert resp.status_code == 400 and "not valid JSON" in _reason(resp)


async def test_malformed_cloudevents(gw: httpx.AsyncClient) -> None:
    ct = "application/cloudevents+json"
    missing_id = cloud_event("x")
    del missing_id["id"]
    cases = [
        missing_id,
        {**cloud_event("x"), "specversion": "0.3"},
        {**cloud_event("x"), "source": ""},
        {**cloud_event("x"), "Bad-Ext": "1"},
    ]
    for case in cases:
        resp = await gw.post("/hooks/releases", **signed(case, content_type=ct))
        assert resp.status_code == 400, (case, resp.text)
        assert "malformed CloudEvent" in _reason(resp)
    resp = await gw.post("/hooks/releases", **signed(b"[1, 2]", content_type=ct))
    assert resp.status_code == 400
    # binary mode without ce-id
    body = json.dumps({"component": "c", "version": "1"}).encode()
    req = signed(body, **{"ce-specversion": "1.0", "ce-source": "ci", "ce-type": "dev.apeiro.release.published"})
    resp = await gw.post("/hooks/releases", **req)
    assert resp.status_code == 400 and "id" in _reason(resp)
    # batched mode and structured JSON without ce- headers
    resp = await gw.post(
        "/hooks/releases", **signed([cloud_event("x")], content_type="application/cloudevents-batch+json")
    )  # type: ignore[arg-type]
    assert resp.status_code == 415
    resp = await gw.post("/hooks/releases", **signed(cloud_event("x")))
    assert resp.status_code == 415 and "binary mode" in _reason(resp)


async def test_unknown_pipeline(gw: httpx.AsyncClient) -> None:
    resp = await gw.post("/hooks/pipelines/does-not-exist", **signed({"inputs": {}}))
    assert resp.status_code == 404
    assert "no pipeline named 'does-not-exist'" in _reason(resp) and "hook-echo" in _reason(resp)


async def test_inputs_failing_validation(gw: httpx.AsyncClient) -> None:
    resp = await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {"count": "many", "extra": 1}}))
    assert resp.status_code == 422
    paths = {d["path"] for d in resp.json()["details"]}
    assert {"inputs.message", "inputs.count", "inputs.extra"} <= paths, resp.json()
    resp = await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {"message": "x"}, "unknown": 1}))
    assert resp.status_code == 422 and "unknown" in _reason(resp)


async def test_payload_models_reject_bad_events(gw: httpx.AsyncClient) -> None:
    resp = await gw.post("/hooks/alerts", **bearer({"status": "firing", "alerts": []}))
    assert resp.status_code == 422 and "alerts" in _reason(resp)
    resp = await gw.post("/hooks/boot", **signed({"server": "bad name!", "boot_id": "b"}))
    assert resp.status_code == 422 and "server" in _reason(resp)
    resp = await gw.post("/hooks/registry", **bearer({"events": [{"id": "x"}]}))
    assert resp.status_code == 422


async def test_event_that_does_not_fit_the_rule_target(gw: httpx.AsyncClient) -> None:
    # The alert matches rule `shoot` but lacks the `shoot` label its target needs.
    resp = await gw.post("/hooks/alerts", **bearer(alert_payload("ShootReconcileFailed", "fp1")))
    assert resp.status_code == 422 and "shoot" in _reason(resp)


async def test_registry_push_outside_component_descriptors_is_ignored(gw: httpx.AsyncClient) -> None:
    envelope = registry_envelope("e2", repository="ocm/component-descriptors/", tag="1.0.0")
    resp = await gw.post("/hooks/registry", **bearer(envelope))
    assert resp.status_code == 202 and resp.json()["ignored"], resp.text  # empty component: no rule matches


async def test_temporal_unreachable_is_503_with_retry_after(gw: httpx.AsyncClient) -> None:
    resp = await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {"message": "hi"}}))
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "5"
    assert "retry the same delivery" in _reason(resp)
    resp = await gw.get("/readyz")
    assert resp.status_code == 503


async def test_openapi_and_metrics(gw: httpx.AsyncClient) -> None:
    await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {}}, key="wrong"))
    doc = (await gw.get("/openapi.json")).json()
    assert "/hooks/pipelines/{pipeline}" in doc["paths"]
    op = doc["paths"]["/hooks/releases"]["post"]
    assert "application/cloudevents+json" in op["requestBody"]["content"]
    assert {"202", "400", "401", "413", "415", "422", "503"} <= set(op["responses"])
    schemas = doc["components"]["schemas"]
    assert {
        "CloudEvent",
        "RegistryEnvelope",
        "AlertmanagerPayload",
        "BootCallback",
        "PipelineTrigger",
        "RegistryEvent",
    } <= set(schemas)
    text = (await gw.get("/metrics")).text
    assert 'apeiro_webhook_requests_total{outcome="bad_signature",route="pipelines",status="401"} 1.0' in text
    assert "apeiro_webhook_request_seconds_bucket" in text
    assert (await gw.get("/healthz")).json() == {"status": "ok"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    route=st.sampled_from(["/hooks/open/hook-echo", "/hooks/open/x", "/hooks/pipelines/hook-echo"]),
    ctype=st.sampled_from(["application/json", "text/plain", "", "application/cloudevents+json"]),
)
async def test_fuzz_never_500(gw: httpx.AsyncClient, body: bytes, route: str, ctype: str) -> None:
    headers = {"content-type": ctype} if ctype else {}
    resp = await gw.post(route, content=body, headers=headers)
    assert resp.status_code < 500 or resp.status_code == 503, resp.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "events",
                        "alerts",
                        "status",
                        "id",
                        "specversion",
                        "source",
                        "type",
                        "data",
                        "server",
                        "boot_id",
                        "target",
                        "action",
                        "labels",
                    ]
                ),
                children,
                max_size=5,
            )
        ),
        max_leaves=25,
    ),
    route=st.sampled_from(["/hooks/registry", "/hooks/alerts", "/hooks/releases", "/hooks/boot"]),
)
async def test_fuzz_signed_payloads_never_500(gw: httpx.AsyncClient, body: object, route: str) -> None:
    raw = json.dumps(body).encode()
    ct = "application/cloudevents+json" if route == "/hooks/releases" else "application/json"
    req = (
        bearer(raw, content_type=ct) if route in ("/hooks/registry", "/hooks/alerts") else signed(raw, content_type=ct)
    )
    resp = await gw.post(route, **req)
    assert resp.status_code < 500 or resp.status_code == 503, resp.text


def test_key_rotation_through_a_file_reference(tmp_path: Path) -> None:
    from definitions.triggers import HmacAuth
    from triggers.auth import KeyCache, sign, verify
    from triggers.events import HookError

    key_file = tmp_path / "hook.key"
    key_file.write_text("first\n")
    auth = HmacAuth(secrets=[f"file:{key_file}"])
    keys = KeyCache(ttl=0)  # re-read on every use (the gateway default is 30 s)
    body = b"{}"
    verify(auth, {"x-apeiro-signature": sign(body, "first")}, body, keys)
    key_file.write_text("second\n")  # the operator rotates the key in place
    with pytest.raises(HookError) as exc:
        verify(auth, {"x-apeiro-signature": sign(body, "first")}, body, keys)
    assert exc.value.status == 401
    verify(auth, {"x-apeiro-signature": sign(body, "second")}, body, keys)
    # A sender holding both keys during the overlap sends two v1 entries: accepted.
    t = sign(body, "second").split(",")[0]
    both = f"{sign(body, 'first', int(t[2:]))},{sign(body, 'second', int(t[2:])).split(',')[1]}"
    verify(auth, {"x-apeiro-signature": both}, body, keys)


def test_unreadable_key_is_503_not_401(tmp_path: Path) -> None:
    from definitions.triggers import BearerAuth
    from triggers.auth import KeyCache, verify
    from triggers.events import HookError

    auth = BearerAuth(tokens=[f"file:{tmp_path / 'missing'}"])
    with pytest.raises(HookError) as exc:
        verify(auth, {"authorization": "Bearer x"}, b"", KeyCache())
    assert exc.value.status == 503 and "cannot read" in exc.value.reason


def test_shipped_gateway_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from triggers.config import DEFAULT_CONFIG, check_config, load_gateway_config

    monkeypatch.delenv("APEIRO_DEFINITIONS", raising=False)
    config = load_gateway_config(DEFAULT_CONFIG)
    assert check_config(config) == []
    assert {r.source for r in config.routes} == {
        "docker-registry",
        "alertmanager",
        "cloudevents",
        "boot-callback",
        "pipeline",
    }


def test_config_problems_are_reported_with_paths() -> None:
    from definitions.triggers import parse_gateway_config
    from triggers.config import check_config

    config = parse_gateway_config(
        {
            "routes": [
                {"name": "a", "source": "nope", "auth": {"type": "none"}},
                {"name": "b", "source": "pipeline", "path": "/hooks/b", "auth": {"type": "none"}},
                {
                    "name": "c",
                    "source": "alertmanager",
                    "auth": {"type": "none"},
                    "rules": [
                        {"name": "r", "when": "event.status ==", "target": {"step": "core.echo"}},
                        {"name": "s", "target": {"pipeline": "no-such-pipeline"}},
                    ],
                },
            ]
        }
    )
    problems = {p.path: p.message for p in check_config(config)}
    assert "unknown source 'nope'" in problems["routes[0].source"]
    assert "{pipeline}" in problems["routes[1].path"]
    assert "syntax error" in problems["routes[2].rules[0].when"]
    assert "not a workflow step type" in problems["routes[2].rules[0].target.step"]
    assert "no pipeline named 'no-such-pipeline'" in problems["routes[2].rules[1].target.pipeline"]
