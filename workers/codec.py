"""Payload encryption: a Temporal PayloadCodec with AES-256-GCM and named keys for rotation.

Workflow history (inputs, results, signals, updates, activity arguments) is stored by the Temporal
server and readable by anyone with UI or API access to the namespace. With this codec every payload
leaves the client or worker encrypted; the server and its database only see ciphertext.

Configuration (environment, on every client and worker and on the codec server):

- ``APEIRO_PAYLOAD_KEYS``: ``id=REF,id=REF,...`` where REF is a secret reference (``env:NAME``,
  ``file:/path``, ``k8s:ns/secret#key``) to 32 bytes of key material, base64 or hex encoded.
- ``APEIRO_PAYLOAD_KEY_ID``: the id that encrypts new payloads (default: the first listed).

Rotation: add the new key to every process's list, switch ``APEIRO_PAYLOAD_KEY_ID`` to it, and keep
the old one listed as long as histories encrypted with it are still read (retention period).

Wire format: metadata ``encoding=binary/encrypted``, ``encryption-key-id=<id>``,
``encryption-cipher=AES256-GCM``; data is a 12-byte random nonce followed by the AES-GCM ciphertext
(with tag) of the serialised original Payload. The key id is bound as associated data, so a payload
cannot be relabelled with another key id.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
CIPHER = b"AES256-GCM"
KEY_ID_META = "encryption-key-id"
CIPHER_META = "encryption-cipher"
NONCE_BYTES = 12

ENV_KEYS = "APEIRO_PAYLOAD_KEYS"
ENV_KEY_ID = "APEIRO_PAYLOAD_KEY_ID"


class CodecConfigError(Exception):
    """Payload encryption is configured wrongly; the message says which variable or key to fix."""


class PayloadDecryptError(Exception):
    """A payload cannot be decrypted here: unknown key id (add the old key) or tampered data."""


def parse_key_material(text: str, key_id: str) -> bytes:
    """32 bytes from base64 (44 chars, standard or urlsafe) or hex (64 chars)."""
    text = text.strip()
    raw: bytes | None = None
    if len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise CodecConfigError(
            f"payload key {key_id!r} must be 32 bytes, base64 or hex encoded (generate one with `apeiro codec keygen`)"
        )
    return raw


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads. Payloads not encrypted by us pass through on decode, so
    histories written before encryption was switched on stay readable."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if not keys:
            raise CodecConfigError("payload encryption needs at least one key")
        if active_key_id not in keys:
            raise CodecConfigError(
                f"{ENV_KEY_ID}={active_key_id!r} is not among the keys in {ENV_KEYS} ({', '.join(keys)})"
            )
        for kid, key in keys.items():
            if len(key) != 32:
                raise CodecConfigError(f"payload key {kid!r} must be 32 bytes (AES-256)")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        kid = self.active_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_META: kid.encode(), CIPHER_META: CIPHER},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        kid = payload.metadata.get(KEY_ID_META, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise PayloadDecryptError(
                f"payload was encrypted with key {kid!r}, which this process does not have; "
                f"add it to {ENV_KEYS} (known: {', '.join(self._ciphers)})"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], kid.encode())
        except Exception:
            raise PayloadDecryptError(
                f"payload encrypted with key {kid!r} fails authentication: wrong key material or tampered data"
            ) from None
        out = Payload()
        out.ParseFromString(plain)
        return out


def parse_key_list(text: str) -> list[tuple[str, str]]:
    """``id=ref,id=ref`` -> [(id, ref)], in order."""
    pairs: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, ref = item.partition("=")
        kid, ref = kid.strip(), ref.strip()
        if not sep or not kid or not ref:
            raise CodecConfigError(f"{ENV_KEYS}: expected id=secret-reference, got {item!r}")
        if any(k == kid for k, _ in pairs):
            raise CodecConfigError(f"{ENV_KEYS}: key id {kid!r} listed twice")
        pairs.append((kid, ref))
    return pairs


def codec_from_env(environ: Mapping[str, str] | None = None) -> EncryptionCodec | None:
    """The codec the environment configures, or None when encryption is off (no APEIRO_PAYLOAD_KEYS).

    Keys are secret references resolved with the same resolver activities use, so key material lives
    in a file, an environment variable or a Kubernetes Secret, never in configuration files.
    """
    from activities.secrets import SecretError, resolve_secret

    env = os.environ if environ is None else environ
    spec = env.get(ENV_KEYS, "").strip()
    if not spec:
        return None
    pairs = parse_key_list(spec)
    if not pairs:
        raise CodecConfigError(f"{ENV_KEYS} is set but names no key")
    keys: dict[str, bytes] = {}
    for kid, ref in pairs:
        try:
            material = resolve_secret(ref)
        except SecretError as exc:
            raise CodecConfigError(f"payload key {kid!r}: {exc.message}") from None
        keys[kid] = parse_key_material(material, kid)
    active = env.get(ENV_KEY_ID, "").strip() or pairs[0][0]
    return EncryptionCodec(keys, active)


def generate_key() -> str:
    """A fresh random key, base64 encoded (what ``apeiro codec keygen`` prints)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
