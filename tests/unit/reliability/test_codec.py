"""Payload codec: encryption round trip, key rotation, tamper detection, configuration errors."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from workers.codec import (
    ENCODING,
    KEY_ID_META,
    CodecConfigError,
    EncryptionCodec,
    PayloadDecryptError,
    codec_from_env,
    generate_key,
    parse_key_material,
)
from workers.config import ConfigError, data_converter

K1, K2 = os.urandom(32), os.urandom(32)


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_hides_data_and_metadata() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    [enc] = await codec.encode([plain('{"password-ish": "hunter2"}')])
    assert b"hunter2" not in enc.SerializeToString()
    assert b"json/plain" not in enc.data
    assert enc.metadata["encoding"] == ENCODING and enc.metadata[KEY_ID_META] == b"k1"
    [dec] = await codec.decode([enc])
    assert dec == plain('{"password-ish": "hunter2"}')


async def test_same_plaintext_encrypts_differently() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    a, b = await codec.encode([plain("x"), plain("x")])
    assert a.data != b.data


async def test_rotation_decodes_payloads_of_the_old_key() -> None:
    old = EncryptionCodec({"k1": K1}, "k1")
    [before] = await old.encode([plain("written before rotation")])
    rotated = EncryptionCodec({"k1": K1, "k2": K2}, "k2")
    [after] = await rotated.encode([plain("written after")])
    assert after.metadata[KEY_ID_META] == b"k2"
    assert await rotated.decode([before, after]) == [plain("written before rotation"), plain("written after")]
    with pytest.raises(PayloadDecryptError, match=r"key 'k2'.*add it to APEIRO_PAYLOAD_KEYS"):
        await old.decode([after])


async def test_unencrypted_payloads_pass_through_on_decode() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    assert await codec.decode([plain("legacy")]) == [plain("legacy")]


async def test_tampering_and_relabelling_are_detected() -> None:
    codec = EncryptionCodec({"k1": K1, "k2": K1}, "k1")
    [enc] = await codec.encode([plain("x")])
    flipped = Payload(metadata=dict(enc.metadata), data=enc.data[:-1] + bytes([enc.data[-1] ^ 1]))
    with pytest.raises(PayloadDecryptError, match="fails authentication"):
        await codec.decode([flipped])
    # Same key material under another id: the key id is bound as associated data.
    relabelled = Payload(metadata={**enc.metadata, KEY_ID_META: b"k2"}, data=enc.data)
    with pytest.raises(PayloadDecryptError):
        await codec.decode([relabelled])


def test_key_material_formats() -> None:
    assert parse_key_material(K1.hex(), "k") == K1
    assert parse_key_material(base64.b64encode(K1).decode(), "k") == K1
    assert parse_key_material(base64.urlsafe_b64encode(K1).decode(), "k") == K1
    assert len(base64.b64decode(generate_key())) == 32
    with pytest.raises(CodecConfigError, match="32 bytes"):
        parse_key_material(base64.b64encode(b"short").decode(), "k")


def test_config_from_secret_references(tmp_path: Path) -> None:
    keyfile = tmp_path / "k2"
    keyfile.write_text(K2.hex() + "\n")
    env = {
        "APEIRO_PAYLOAD_KEYS": f"k1=env:K1_MATERIAL, k2=file:{keyfile}",
        "APEIRO_PAYLOAD_KEY_ID": "k2",
        "K1_MATERIAL": base64.b64encode(K1).decode(),
    }
    os.environ["K1_MATERIAL"] = env["K1_MATERIAL"]
    try:
        codec = codec_from_env(env)
    finally:
        del os.environ["K1_MATERIAL"]
    assert codec is not None and codec.key_ids == ["k1", "k2"] and codec.active_key_id == "k2"
    assert codec_from_env({}) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APEIRO_PAYLOAD_KEYS": "k1"}, "expected id=secret-reference"),
        ({"APEIRO_PAYLOAD_KEYS": "k1=hunter2"}, "must be a secret reference"),
        ({"APEIRO_PAYLOAD_KEYS": "k1=env:APEIRO_TEST_UNSET_VAR"}, "APEIRO_TEST_UNSET_VAR is not set"),
        ({"APEIRO_PAYLOAD_KEYS": "k1=env:HOME,k1=env:HOME"}, "listed twice"),
    ],
)
def test_config_errors_say_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(CodecConfigError, match=message):
        codec_from_env(env)


def test_data_converter_applies_the_codec_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_converter().payload_codec is None
    monkeypatch.setenv("APEIRO_K", K1.hex())
    monkeypatch.setenv("APEIRO_PAYLOAD_KEYS", "main=env:APEIRO_K")
    conv = data_converter()
    assert isinstance(conv.payload_codec, EncryptionCodec)
    assert conv.payload_converter is not None
    monkeypatch.setenv("APEIRO_PAYLOAD_KEY_ID", "other")
    with pytest.raises(ConfigError, match="APEIRO_PAYLOAD_KEY_ID='other' is not among the keys"):
        data_converter()
