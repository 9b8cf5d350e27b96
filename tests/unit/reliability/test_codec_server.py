"""Codec server: Temporal's remote codec protocol, authentication (token and OIDC-lite JWT), CORS."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.testclient import TestClient

from workers.codec import EncryptionCodec
from workers.codec_server import CodecServerConfig, OidcLite, create_app

UI = "http://localhost:8233"
TOKEN = "s3cret-token"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUB = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict[str, Any], key: rsa.RSAPrivateKey = KEY) -> str:
    head = b64u(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64u(sig)}"


def claims(**over: Any) -> dict[str, Any]:
    return {"iss": "https://idp.example", "aud": "temporal-ui", "sub": "alice", "exp": time.time() + 300, **over}


@pytest.fixture
def client() -> TestClient:
    codec = EncryptionCodec({"k1": os.urandom(32)}, "k1")
    app = create_app(
        CodecServerConfig(
            codec=codec, cors_origins=[UI], tokens=[TOKEN], oidc=OidcLite(PUB, "https://idp.example", "temporal-ui")
        )
    )
    return TestClient(app)


def body(text: str) -> dict[str, Any]:
    return {
        "payloads": [
            {"metadata": {"encoding": b64u(b"json/plain") + "="}, "data": base64.b64encode(text.encode()).decode()}
        ]
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Namespace": "default", "Origin": UI}


def test_encode_then_decode_round_trip(client: TestClient) -> None:
    enc = client.post("/encode", json=body('"hello"'), headers=auth(TOKEN))
    assert enc.status_code == 200
    p = enc.json()["payloads"][0]
    assert base64.b64decode(p["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"hello" not in base64.b64decode(p["data"])
    dec = client.post("/decode", json=enc.json(), headers=auth(TOKEN))
    assert dec.status_code == 200
    assert base64.b64decode(dec.json()["payloads"][0]["data"]) == b'"hello"'
    assert dec.headers["access-control-allow-origin"] == UI


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {jwt(claims(), OTHER_KEY)}"},
        {"Authorization": f"Bearer {jwt(claims(exp=time.time() - 3600))}"},
        {"Authorization": f"Bearer {jwt(claims(iss='https://evil.example'))}"},
        {"Authorization": f"Bearer {jwt(claims(aud='someone-else'))}"},
        {"Authorization": "Bearer a.b.c"},
    ],
    ids=["none", "wrong-token", "basic", "jwt-wrong-key", "jwt-expired", "jwt-issuer", "jwt-audience", "garbage-jwt"],
)
def test_decode_refuses_without_valid_credentials(client: TestClient, headers: dict[str, str]) -> None:
    enc = client.post("/encode", json=body('"x"'), headers=auth(TOKEN)).json()
    r = client.post("/decode", json=enc, headers=headers)
    assert r.status_code == 401
    assert "payloads" not in r.json()


def test_oidc_access_token_is_accepted(client: TestClient) -> None:
    enc = client.post("/encode", json=body('"x"'), headers=auth(TOKEN)).json()
    r = client.post("/decode", json=enc, headers=auth(jwt(claims())))
    assert r.status_code == 200 and base64.b64decode(r.json()["payloads"][0]["data"]) == b'"x"'


def test_cors_preflight_allows_only_the_ui_origin(client: TestClient) -> None:
    pre = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    ok = client.options("/decode", headers={"Origin": UI, **pre})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == UI
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    bad = client.options("/decode", headers={"Origin": "https://evil.example", **pre})
    assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers


def test_bad_bodies_and_unknown_keys_are_client_errors(client: TestClient) -> None:
    assert client.post("/decode", content=b"not json", headers=auth(TOKEN)).status_code == 400
    foreign = EncryptionCodec({"k9": os.urandom(32)}, "k9")
    foreign_app = TestClient(create_app(CodecServerConfig(codec=foreign, tokens=[TOKEN])))
    enc = foreign_app.post("/encode", json=body('"x"'), headers=auth(TOKEN)).json()
    r = client.post("/decode", json=enc, headers=auth(TOKEN))
    assert r.status_code == 400 and "k9" in r.json()["message"]


def test_server_refuses_to_start_without_authentication() -> None:
    with pytest.raises(ValueError, match="needs authentication"):
        CodecServerConfig(codec=EncryptionCodec({"k": os.urandom(32)}, "k"))
