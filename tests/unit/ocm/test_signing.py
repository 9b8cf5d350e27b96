"""Signing and verification: algorithms, encodings, certificate chains, tampering, legacy forms."""

from __future__ import annotations

import copy

import pytest

from activities.ocm import normalise as norm
from activities.ocm import signing as sg
from tests.unit.ocm.helpers import cert_pem, descriptor, make_cert, new_key, pub_pem, vectors_dir

KEY = new_key()
OTHER = new_key()

BLOB = {
    "name": "blob",
    "version": "1.2.3",
    "type": "plainText",
    "relation": "local",
    "access": {"type": "localBlob", "localReference": "sha256:" + "a" * 64, "mediaType": "text/plain"},
    "digest": {"hashAlgorithm": "SHA-256", "normalisationAlgorithm": "genericBlobDigest/v1", "value": "a" * 64},
}
DESC = descriptor("acme.org/app", "1.2.3", "acme", resources=[BLOB])


@pytest.mark.parametrize("algorithm", sg.ALGORITHMS)
@pytest.mark.parametrize("normalisation", norm.ALGORITHMS)
def test_sign_verify_round_trip(algorithm: str, normalisation: str) -> None:
    signed = sg.sign_descriptor(DESC, name="acme", private_key=KEY, algorithm=algorithm, normalisation=normalisation)
    sig = signed["signatures"][0]
    assert sig["signature"]["mediaType"] == sg.MEDIA_TYPES[algorithm]
    assert sig["digest"]["value"] == norm.descriptor_digest(DESC, normalisation)
    assert "signatures" not in DESC  # input untouched
    res = sg.verify_descriptor(signed, name="acme", public_key=KEY.public_key(), strict=True)
    assert res.valid, res.reason
    assert not res.warnings


def test_pss_is_max_salt_and_pkcs1_deterministic() -> None:
    a = sg.sign_descriptor(DESC, name="x", private_key=KEY, algorithm=sg.RSA_PKCS1)
    b = sg.sign_descriptor(DESC, name="x", private_key=KEY, algorithm=sg.RSA_PKCS1)
    assert a == b
    p1 = sg.sign_descriptor(DESC, name="x", private_key=KEY)
    p2 = sg.sign_descriptor(DESC, name="x", private_key=KEY)
    assert p1["signatures"][0]["signature"]["value"] != p2["signatures"][0]["signature"]["value"]


def test_tampered_descriptor_fails() -> None:
    signed = sg.sign_descriptor(DESC, name="acme", private_key=KEY)
    bad = copy.deepcopy(signed)
    bad["component"]["resources"][0]["digest"]["value"] = "b" * 64
    res = sg.verify_descriptor(bad, name="acme", public_key=KEY.public_key())
    assert not res.valid
    assert "digest mismatch" in res.reason and "changed after signing" in res.reason
    # Changing only an excluded part (access) keeps it valid: that is what by-value transport relies on.
    moved = copy.deepcopy(signed)
    moved["component"]["resources"][0]["access"] = {"type": "ociArtifact", "imageReference": "x/y@sha256:1"}
    assert sg.verify_descriptor(moved, name="acme", public_key=KEY.public_key()).valid


def test_tampered_signature_value_fails() -> None:
    signed = sg.sign_descriptor(DESC, name="acme", private_key=KEY, algorithm=sg.RSA_PKCS1)
    v = signed["signatures"][0]["signature"]["value"]
    signed["signatures"][0]["signature"]["value"] = ("0" if v[0] != "0" else "1") + v[1:]
    res = sg.verify_descriptor(signed, name="acme", public_key=KEY.public_key())
    assert not res.valid and "does not verify" in res.reason


def test_wrong_key_fails() -> None:
    signed = sg.sign_descriptor(DESC, name="acme", private_key=KEY)
    res = sg.verify_descriptor(signed, name="acme", public_key=OTHER.public_key())
    assert not res.valid and "wrong key" in res.reason


def test_unknown_normalisation_in_signature() -> None:
    signed = sg.sign_descriptor(DESC, name="acme", private_key=KEY)
    signed["signatures"][0]["digest"]["normalisationAlgorithm"] = "jsonNormalisation/v42"
    res = sg.verify_descriptor(signed, name="acme", public_key=KEY.public_key())
    assert not res.valid and "unknown normalisation algorithm 'jsonNormalisation/v42'" in res.reason


def test_missing_and_ambiguous_names() -> None:
    one = sg.sign_descriptor(DESC, name="a", private_key=KEY)
    two = sg.sign_descriptor(one, name="b", private_key=OTHER)
    assert sg.verify_descriptor(one, public_key=KEY.public_key()).valid
    assert "name the one" in sg.verify_descriptor(two, public_key=KEY.public_key()).reason
    assert "no signature named 'c'" in sg.verify_descriptor(two, name="c", public_key=KEY.public_key()).reason
    assert sg.verify_descriptor(two, name="b", public_key=OTHER.public_key()).valid
    assert "no signatures" in sg.verify_descriptor(DESC, public_key=KEY.public_key()).reason


def test_pem_with_certificate_chain() -> None:
    root_key, inter_key = new_key(), new_key()
    root = make_cert("Apeiro Root", root_key, ca=True)
    inter = make_cert("Apeiro Intermediate", inter_key, root, root_key, ca=True)
    leaf = make_cert("release-signer", KEY, inter, inter_key)
    signed = sg.sign_descriptor(
        DESC, name="rel", private_key=KEY, chain=[leaf, inter], roots=[root], issuer="CN=release-signer"
    )
    spec = signed["signatures"][0]["signature"]
    assert spec["mediaType"] == sg.MEDIA_PEM
    assert spec["value"].startswith("-----BEGIN SIGNATURE-----\nSignature Algorithm: RSASSA-PSS\n\n")
    assert "CN=release-signer" in spec["issuer"]
    # verified through the chain alone (no public key given)
    ok = sg.verify_descriptor(signed, name="rel", roots=[root], issuer="CN=release-signer,O=Apeiro")
    assert ok.valid, ok.reason
    # wrong expected issuer
    bad = sg.verify_descriptor(signed, name="rel", roots=[root], issuer="CN=someone-else")
    assert not bad.valid and "issuer mismatch" in bad.reason
    # untrusted root
    other_root = make_cert("Other Root", new_key(), ca=True)
    bad = sg.verify_descriptor(signed, name="rel", roots=[other_root])
    assert not bad.valid and "trusted root" in bad.reason
    # a plain public key still works with a PEM signature
    assert sg.verify_descriptor(signed, name="rel", public_key=KEY.public_key()).valid
    # chain parsing
    raw, alg, chain = sg.signature_from_pem(spec["value"])
    assert alg == sg.RSA_PSS and len(chain) == 2 and len(raw) == 256


def test_leaf_without_code_signing_rejected() -> None:
    root_key = new_key()
    root = make_cert("Root", root_key, ca=True)
    leaf = make_cert("tls-only", KEY, root, root_key, code_signing=False)
    with pytest.raises(sg.SignatureInvalid, match="code signing"):
        sg.sign_descriptor(DESC, name="x", private_key=KEY, chain=[leaf], roots=[root])


def test_certificate_must_match_key() -> None:
    root_key = new_key()
    root = make_cert("Root", root_key, ca=True)
    leaf = make_cert("signer", OTHER, root, root_key)
    with pytest.raises(sg.KeyError_, match="does not belong"):
        sg.sign_descriptor(DESC, name="x", private_key=KEY, chain=[leaf])


def test_key_loading() -> None:
    assert sg.load_public_key(pub_pem(KEY)).public_numbers() == KEY.public_key().public_numbers()
    root_key = new_key()
    root = make_cert("Root", root_key, ca=True)
    assert sg.load_public_key(cert_pem(root)).public_numbers() == root_key.public_key().public_numbers()
    with pytest.raises(sg.KeyError_):
        sg.load_public_key(b"not a key")
    with pytest.raises(sg.KeyError_):
        sg.load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_private_keys_are_loaded_once_per_pem(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization

    pems = [
        k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        for k in (KEY, OTHER)
    ]
    loads: list[bytes] = []
    real = serialization.load_pem_private_key

    def counting(data: bytes, password: bytes | None = None) -> object:
        loads.append(data)
        return real(data, password=password)

    monkeypatch.setattr(sg, "_PRIVATE_KEYS", {})
    monkeypatch.setattr(sg.serialization, "load_pem_private_key", counting)
    first = sg.load_private_key(pems[0])
    assert sg.load_private_key(pems[0].decode()) is first  # same PEM (str or bytes): the same key object
    other = sg.load_private_key(pems[1])
    assert other.private_numbers() == OTHER.private_numbers() and first.private_numbers() == KEY.private_numbers()
    assert loads == pems
    bad = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    for _ in range(2):  # a bad key is never cached: it fails every time
        with pytest.raises(sg.KeyError_):
            sg.load_private_key(bad)
    assert loads == [*pems, bad, bad]


def test_legacy_signed_vector() -> None:
    d = vectors_dir() / "ocm-v1-signing-compat-rsa"
    data = norm.load_descriptor_data((d / "component-descriptor.yaml").read_text())
    pub = sg.load_public_key((d / "rsa.pub").read_bytes())
    res = sg.verify_descriptor(data, name="test", public_key=pub)
    assert res.valid, res.reason
    assert len(res.warnings) == 1 and "legacy form without extraIdentity:null" in res.warnings[0]
    strict = sg.verify_descriptor(data, name="test", public_key=pub, strict=True)
    assert not strict.valid
    assert "legacy form without extraIdentity:null" in strict.reason and "strict" in strict.reason
    # a wrong key still fails even though the legacy digest matches
    assert not sg.verify_descriptor(data, name="test", public_key=OTHER.public_key()).valid
