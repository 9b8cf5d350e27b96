"""The remote codec endpoint for the Temporal UI and CLI (`apeiro codec serve`).

With payload encryption on, the Temporal UI shows ciphertext. Point the UI's "Codec Server" setting
(or `temporal --codec-endpoint`) at this server and the browser sends each payload here to be
decoded, so people with the key-holder's permission read plaintext while the Temporal server never
sees it. Protocol (Temporal's remote codec): ``POST /decode`` and ``POST /encode`` with JSON
``{"payloads": [{"metadata": {k: base64}, "data": base64}]}``, answered in the same shape.

Security: the server holds the keys, so it must not decode for anybody. Every request needs either
a static bearer token (``--token-ref``, compared in constant time) or an OIDC access token (the UI's
"pass access token" option) that is a JWT signed RS256/ES256 by a key we were given, with the
expected issuer and audience and not expired ("OIDC-lite": no discovery, the public key is
configured). CORS allows only the configured UI origins; preflight requests need no token (the
browser cannot send one), but they reveal nothing.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from workers.codec import EncryptionCodec, PayloadDecryptError

log = logging.getLogger(__name__)

#: Largest request body accepted (Temporal's payload limit is 2 MiB; a batch of them base64'd).
MAX_BODY = 8 * 1024 * 1024


class AuthError(Exception):
    pass


@dataclass
class OidcLite:
    """Verify a JWT access token against one configured public key, issuer and audience."""

    public_key_pem: bytes
    issuer: str
    audience: str
    leeway_seconds: int = 30

    def verify(self, token: str) -> dict[str, Any]:
        try:
            head_b64, body_b64, sig_b64 = token.split(".")
            header = json.loads(_b64url(head_b64))
            claims = json.loads(_b64url(body_b64))
            signature = _b64url(sig_b64)
        except (ValueError, json.JSONDecodeError) as exc:
            raise AuthError(f"malformed token: {exc}") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AuthError("malformed token")
        key = load_pem_public_key(self.public_key_pem)
        signed = f"{head_b64}.{body_b64}".encode()
        alg = header.get("alg")
        try:
            if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
                der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
            else:
                raise AuthError(f"token algorithm {alg!r} does not match the configured key")
        except InvalidSignature:
            raise AuthError("token signature invalid") from None
        now = time.time()
        if claims.get("iss") != self.issuer:
            raise AuthError("token issuer not accepted")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if self.audience not in auds:
            raise AuthError("token audience not accepted")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp + self.leeway_seconds < now:
            raise AuthError("token expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - self.leeway_seconds > now:
            raise AuthError("token not yet valid")
        return claims


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class CodecServerConfig:
    codec: EncryptionCodec
    cors_origins: Sequence[str] = ("http://localhost:8233",)
    tokens: Sequence[str] = ()
    oidc: OidcLite | None = None
    #: Namespaces this server decodes for (empty: any). The UI sends X-Namespace.
    namespaces: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.tokens and self.oidc is None:
            raise ValueError("the codec server needs authentication: give a bearer token or OIDC settings")


def _authenticate(config: CodecServerConfig, request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("missing bearer token")
    token = token.strip()
    for expected in config.tokens:
        if hmac.compare_digest(token.encode(), expected.encode()):
            return "token"
    if config.oidc is not None and token.count(".") == 2:
        claims = config.oidc.verify(token)
        return str(claims.get("sub", "oidc"))
    raise AuthError("token not accepted")


def create_app(config: CodecServerConfig) -> Starlette:
    async def handle(request: Request, decode: bool) -> Response:
        try:
            who = _authenticate(config, request)
        except AuthError as exc:
            return JSONResponse({"message": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        namespace = request.headers.get("x-namespace", "")
        if config.namespaces and namespace not in config.namespaces:
            return JSONResponse({"message": f"namespace {namespace!r} not served here"}, status_code=403)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"message": "request too large"}, status_code=413)
        try:
            payloads = json_format.Parse(body, Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return JSONResponse({"message": f"body is not a Payloads JSON object: {exc}"}, status_code=400)
        try:
            if decode:
                out = await config.codec.decode(payloads.payloads)
            else:
                out = await config.codec.encode(payloads.payloads)
        except PayloadDecryptError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        log.info(
            "codec %s: %d payload(s) for %s in namespace %s",
            "decode" if decode else "encode",
            len(out),
            who,
            namespace or "-",
        )
        return JSONResponse(json_format.MessageToDict(Payloads(payloads=out)))

    async def decode(request: Request) -> Response:
        return await handle(request, True)

    async def encode(request: Request) -> Response:
        return await handle(request, False)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/decode", decode, methods=["POST"]),
            Route("/encode", encode, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", "x-namespace"],
                allow_credentials=True,
                max_age=600,
            )
        ],
    )
