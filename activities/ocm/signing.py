"""Signing and verifying component descriptors the way OCM does.

Model: normalise the descriptor (:mod:`activities.ocm.normalise`), SHA-256 the bytes, and sign the
32 digest bytes themselves (``Prehashed(SHA256)``), with RSASSA-PSS (default; maximum salt length,
like Go's ``rsa.SignPSS(..., nil)``) or RSASSA-PKCS1-V1_5. The value is hex, or a PEM document (a
``SIGNATURE`` block with a ``Signature Algorithm`` header, followed by the signer's certificate chain)
when a certificate is given. A chain is checked against trusted roots at the certificate's
``notBefore`` (as OCM does), for code-signing use, and against an expected issuer name.

Verification recomputes the digest. When the current form of the named normalisation does not
reproduce the signed digest but a known *earlier* form of it does (OCM changed jsonNormalisation/v1
over time), the signature is accepted with a warning naming that form, or rejected under ``strict``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from activities.ocm import normalise as norm
from activities.ocm.digest import SHA256_NAMES
from activities.ocm.errors import KeyError_, SignatureInvalid, UnknownNormalisation

RSA_PSS = "RSASSA-PSS"
RSA_PKCS1 = "RSASSA-PKCS1-V1_5"
ALGORITHMS = (RSA_PSS, RSA_PKCS1)
DEFAULT_ALGORITHM = RSA_PSS
MEDIA_TYPES = {
    RSA_PSS: "application/vnd.ocm.signature.rsa.pss",
    RSA_PKCS1: "application/vnd.ocm.signature.rsa",
}
MEDIA_PEM = "application/x-pem-file"
PEM_SIGNATURE = "SIGNATURE"
PEM_ALGORITHM_HEADER = "Signature Algorithm"


# --- keys and certificates -------------------------------------------------------------------------


#: Shorter RSA keys are refused for signing (NIST SP 800-131A: 2048 bits and up).
MIN_RSA_BITS = 2048


#: Keys loaded so far, by the SHA-256 of their PEM: loading one checks the RSA key's consistency, 35-60
#: ms of CPU, and a transport loads its key in the plan and again per version it signs.
_PRIVATE_KEYS: dict[bytes, rsa.RSAPrivateKey] = {}
_PRIVATE_KEYS_MAX = 16


def load_private_key(pem: bytes | str) -> rsa.RSAPrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    fingerprint = hashlib.sha256(data).digest()
    cached = _PRIVATE_KEYS.get(fingerprint)
    if cached is not None:
        return cached
    key = _load_private_key(data)
    if len(_PRIVATE_KEYS) >= _PRIVATE_KEYS_MAX:
        _PRIVATE_KEYS.pop(next(iter(_PRIVATE_KEYS)))
    _PRIVATE_KEYS[fingerprint] = key
    return key


def _load_private_key(data: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"cannot read the private key (expected an unencrypted PEM RSA key): {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyError_(f"private key is {type(key).__name__}; OCM signing here supports RSA keys only")
    if key.key_size < MIN_RSA_BITS:
        raise KeyError_(
            f"the RSA key has {key.key_size} bits; signing needs at least {MIN_RSA_BITS} "
            "(generate one with `openssl genrsa 3072`)"
        )
    return key


def load_certificates(pem: bytes | str) -> list[x509.Certificate]:
    data = pem.encode() if isinstance(pem, str) else pem
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyError_(f"cannot read certificate(s): {exc}") from None


def load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM public key, a certificate (its key), or a private key."""
    data = pem.encode() if isinstance(pem, str) else pem
    certs = load_certificates(data)
    key: Any
    if certs:
        key = certs[0].public_key()
    elif b"PRIVATE KEY" in data:
        key = load_private_key(data).public_key()
    else:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise KeyError_(f"cannot read the public key (expected PEM): {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyError_(f"public key is {type(key).__name__}; only RSA keys are supported")
    return key


_DN_ATTRS = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "STREET": NameOID.STREET_ADDRESS,
    "POSTALCODE": NameOID.POSTAL_CODE,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
}


def parse_dn(text: str) -> dict[str, list[str]]:
    """``CN=signer,O=Acme`` (or a bare common name, as OCM accepts) -> {attribute: [values]}."""
    parts = [p.strip() for p in re.split(r"(?<!\\)[,+]", text) if p.strip()]
    if len(parts) == 1 and "=" not in parts[0]:
        return {"CN": [parts[0]]}
    out: dict[str, list[str]] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or key.strip().upper() not in _DN_ATTRS:
            raise KeyError_(f"cannot parse distinguished name {text!r} (attribute {key.strip()!r})")
        out.setdefault(key.strip().upper(), []).append(value.strip().replace("\\,", ","))
    return out


def match_dn(subject: x509.Name, expected: str) -> str | None:
    """None when every attribute given in ``expected`` is in ``subject``; else why not."""
    want = parse_dn(expected)
    for attr, values in want.items():
        have = [str(a.value) for a in subject.get_attributes_for_oid(_DN_ATTRS[attr])]
        for v in values:
            if v not in have:
                return f"certificate subject {subject.rfc4514_string()!r} does not match issuer {expected!r}"
    return None


def verify_chain(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    issuer: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Check ``chain[0]`` (the signer) up through ``chain[1:]`` to one of ``roots``.

    Like OCM, validity is checked at the signer certificate's notBefore unless ``at`` is given (a
    signature stays valid after its certificate expires), and the signer must allow code signing.
    """
    if not chain:
        raise SignatureInvalid("signature carries no certificate chain to check")
    if not roots:
        raise SignatureInvalid("no trusted root certificates given to check the signature's certificate chain")
    leaf = chain[0]
    when = at or leaf.not_valid_before_utc
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        allowed = (ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
        if not any(u in eku for u in allowed):
            raise SignatureInvalid("signer certificate is not valid for code signing (extended key usage)")
    except x509.ExtensionNotFound:
        pass
    pool = list(chain[1:]) + list(roots)
    root_fps = {r.fingerprint(hashes.SHA256()) for r in roots}
    current = leaf
    for _depth in range(len(pool) + 1):
        if not (current.not_valid_before_utc <= when <= current.not_valid_after_utc):
            raise SignatureInvalid(
                f"certificate {current.subject.rfc4514_string()!r} is not valid at {when.isoformat()}"
            )
        if current.fingerprint(hashes.SHA256()) in root_fps:
            break
        parent = None
        for cand in pool:
            if cand.subject != current.issuer or cand is current:
                continue
            try:
                current.verify_directly_issued_by(cand)
            except (ValueError, TypeError, InvalidSignature):
                continue
            parent = cand
            break
        if parent is None:
            raise SignatureInvalid(
                f"certificate {current.subject.rfc4514_string()!r} does not chain to a trusted root "
                f"(issuer {current.issuer.rfc4514_string()!r} not found or signature invalid)"
            )
        try:
            bc = parent.extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = bc.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise SignatureInvalid(f"certificate {parent.subject.rfc4514_string()!r} is not a CA")
        current = parent
    else:
        raise SignatureInvalid("certificate chain too long or cyclic")
    if issuer:
        why = match_dn(leaf.subject, issuer)
        if why:
            raise SignatureInvalid(f"issuer mismatch: {why}")


# --- raw signatures --------------------------------------------------------------------------------


def _padding(algorithm: str, *, verify: bool) -> padding.AsymmetricPadding:
    if algorithm == RSA_PSS:
        return padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()),
            salt_length=padding.PSS.AUTO if verify else padding.PSS.MAX_LENGTH,
        )
    if algorithm == RSA_PKCS1:
        return padding.PKCS1v15()
    raise SignatureInvalid(f"unknown signature algorithm {algorithm!r}; supported: {', '.join(ALGORITHMS)}")


def sign_digest(digest_hex: str, key: rsa.RSAPrivateKey, algorithm: str = DEFAULT_ALGORITHM) -> bytes:
    return key.sign(bytes.fromhex(digest_hex), _padding(algorithm, verify=False), utils.Prehashed(hashes.SHA256()))


def verify_digest(digest_hex: str, signature: bytes, key: rsa.RSAPublicKey, algorithm: str) -> bool:
    try:
        key.verify(
            signature,
            bytes.fromhex(digest_hex),
            _padding(algorithm, verify=True),
            utils.Prehashed(hashes.SHA256()),
        )
    except InvalidSignature:
        return False
    return True


def signature_to_pem(algorithm: str, signature: bytes, chain: Sequence[x509.Certificate] = ()) -> str:
    b64 = base64.b64encode(signature).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    text = (
        f"-----BEGIN {PEM_SIGNATURE}-----\n{PEM_ALGORITHM_HEADER}: {algorithm}\n\n"
        + "\n".join(lines)
        + f"\n-----END {PEM_SIGNATURE}-----\n"
    )
    for cert in chain:
        text += cert.public_bytes(serialization.Encoding.PEM).decode()
    return text


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def signature_from_pem(text: str) -> tuple[bytes, str, list[x509.Certificate]]:
    """(signature bytes, algorithm header or "", certificate chain) of a PEM signature value."""
    sig: bytes | None = None
    algo = ""
    for m in _PEM_BLOCK.finditer(text):
        if m.group(1) != PEM_SIGNATURE:
            continue
        body = m.group(2)
        head, sep, rest = body.partition("\n\n")
        if sep and ":" in head.splitlines()[0]:
            for line in head.splitlines():
                k, _, v = line.partition(":")
                if k.strip() == PEM_ALGORITHM_HEADER:
                    algo = v.strip()
            body = rest
        try:
            sig = base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            raise SignatureInvalid("PEM signature block is not valid base64") from None
        break
    if sig is None:
        raise SignatureInvalid("PEM signature value contains no SIGNATURE block")
    return sig, algo, load_certificates(text)


# --- descriptors -----------------------------------------------------------------------------------


def sign_descriptor(
    data: Mapping[str, Any],
    *,
    name: str,
    private_key: rsa.RSAPrivateKey,
    algorithm: str = DEFAULT_ALGORITHM,
    normalisation: str = norm.DEFAULT_ALGORITHM,
    chain: Sequence[x509.Certificate] = (),
    roots: Sequence[x509.Certificate] = (),
    issuer: str | None = None,
) -> dict[str, Any]:
    """A copy of ``data`` with signature ``name`` added (or replaced). The input is not changed."""
    if not name.strip():
        raise SignatureInvalid("a signature needs a name (--name), e.g. the signing party: acme-release")
    if algorithm not in ALGORITHMS:
        raise SignatureInvalid(f"unknown signature algorithm {algorithm!r}; supported: {', '.join(ALGORITHMS)}")
    digest = norm.descriptor_digest(data, normalisation)
    raw = sign_digest(digest, private_key, algorithm)
    spec: dict[str, Any] = {"algorithm": algorithm}
    if chain:
        if chain[0].public_key() != private_key.public_key():
            raise KeyError_("the certificate does not belong to the private key")
        if roots:
            verify_chain(chain, roots, issuer)
        spec["mediaType"] = MEDIA_PEM
        spec["value"] = signature_to_pem(algorithm, raw, chain)
        spec["issuer"] = chain[0].subject.rfc4514_string()
    else:
        spec["mediaType"] = MEDIA_TYPES[algorithm]
        spec["value"] = raw.hex()
    out = copy.deepcopy(dict(data))
    sigs = [s for s in out.get("signatures") or [] if s.get("name") != name]
    sigs.append(
        {
            "name": name,
            "digest": {"hashAlgorithm": "SHA-256", "normalisationAlgorithm": normalisation, "value": digest},
            "signature": spec,
        }
    )
    out["signatures"] = sigs
    return out


@dataclass
class Verification:
    name: str
    valid: bool
    digest: str = ""
    reason: str = ""
    warnings: list[str] = field(default_factory=list)

    def raise_if_invalid(self) -> Verification:
        if not self.valid:
            raise SignatureInvalid(self.reason)
        return self


def _select(data: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    sigs = list(data.get("signatures") or [])
    if not sigs:
        raise SignatureInvalid("descriptor carries no signatures")
    if name is None:
        if len(sigs) > 1:
            names = ", ".join(str(s.get("name")) for s in sigs)
            raise SignatureInvalid(f"descriptor has {len(sigs)} signatures ({names}); name the one to verify")
        return dict(sigs[0])
    for s in sigs:
        if s.get("name") == name:
            return dict(s)
    raise SignatureInvalid(
        f"descriptor has no signature named {name!r} (it has: {', '.join(str(s.get('name')) for s in sigs)})"
    )


def verify_descriptor(
    data: Mapping[str, Any],
    *,
    name: str | None = None,
    public_key: rsa.RSAPublicKey | None = None,
    roots: Sequence[x509.Certificate] = (),
    issuer: str | None = None,
    strict: bool = False,
) -> Verification:
    """Verify signature ``name`` of ``data``; never raises for an invalid signature (see ``valid``)."""
    try:
        sig = _select(data, name)
    except SignatureInvalid as exc:
        return Verification(name or "", False, reason=str(exc))
    sname = str(sig.get("name"))
    dig = sig.get("digest") or {}
    spec = sig.get("signature") or {}
    result = Verification(sname, False)
    signed = str(dig.get("value", "")).lower()
    alg = str(dig.get("normalisationAlgorithm", ""))
    if str(dig.get("hashAlgorithm", "")) not in SHA256_NAMES:
        result.reason = f"signature {sname!r}: unsupported hash algorithm {dig.get('hashAlgorithm')!r}"
        return result
    try:
        computed = norm.descriptor_digest(data, alg)
    except UnknownNormalisation as exc:
        result.reason = f"signature {sname!r}: {exc}"
        return result
    result.digest = computed
    if not hmac.compare_digest(computed, signed):
        legacy = next(
            (
                f
                for f in norm.LEGACY_FORMS.get(alg, ())
                if hmac.compare_digest(norm.descriptor_digest(data, alg, form=f), signed)
            ),
            None,
        )
        if legacy is None:
            result.reason = (
                f"signature {sname!r}: descriptor digest mismatch: {alg} gives {computed}, "
                f"the signature covers {signed}; the descriptor was changed after signing"
            )
            return result
        msg = (
            f"signature {sname!r}: the digest matches only {legacy.name}, {legacy.description}; "
            f"current {alg} gives {computed}"
        )
        if strict:
            result.reason = msg + "; rejected because strict verification accepts only the current form"
            return result
        result.warnings.append(
            msg + f"; accepted for compatibility (re-sign with {norm.DEFAULT_ALGORITHM} to remove this warning)"
        )
        result.digest = signed
    algorithm = str(spec.get("algorithm", ""))
    media = str(spec.get("mediaType", ""))
    value = str(spec.get("value", ""))
    chain: list[x509.Certificate] = []
    try:
        if media == MEDIA_PEM:
            raw, pem_alg, chain = signature_from_pem(value)
            if pem_alg and pem_alg != algorithm:
                result.reason = f"signature {sname!r}: PEM says algorithm {pem_alg!r}, descriptor says {algorithm!r}"
                return result
        elif media in (MEDIA_TYPES.get(algorithm), ""):
            raw = bytes.fromhex(value)
        else:
            result.reason = f"signature {sname!r}: media type {media!r} does not fit algorithm {algorithm!r}"
            return result
        if algorithm not in ALGORITHMS:
            result.reason = f"signature {sname!r}: unknown signature algorithm {algorithm!r}"
            return result
        key = public_key
        if chain and roots:
            verify_chain(chain, roots, issuer)
            if key is None:
                key = chain[0].public_key()  # type: ignore[assignment]
        elif issuer and chain:
            why = match_dn(chain[0].subject, issuer)
            if why:
                result.reason = f"signature {sname!r}: issuer mismatch: {why}"
                return result
        if spec.get("issuer") and chain:
            why = match_dn(chain[0].subject, str(spec["issuer"]))
            if why:
                result.reason = f"signature {sname!r}: issuer field does not match the certificate: {why}"
                return result
        if key is None:
            result.reason = (
                f"signature {sname!r}: no public key to verify with (give a public key, "
                "or trusted roots for a signature with a certificate chain)"
            )
            return result
        if not isinstance(key, rsa.RSAPublicKey):
            result.reason = f"signature {sname!r}: the verification key is not an RSA key"
            return result
    except (SignatureInvalid, KeyError_) as exc:
        result.reason = f"signature {sname!r}: {exc}"
        return result
    except ValueError as exc:
        result.reason = f"signature {sname!r}: signature value cannot be decoded: {exc}"
        return result
    if not verify_digest(signed, raw, key, algorithm):
        result.reason = (
            f"signature {sname!r}: {algorithm} signature does not verify with the given key "
            "(wrong key, or the signature was tampered with)"
        )
        return result
    result.valid = True
    return result


def fingerprint(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]
