"""Shared helpers of the OCM tests: where the vectors are, keys and certificates made on the fly."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[3]


def vectors_dir() -> Path:
    """``../shared/testdata/ocm-vectors`` next to the repository (a worktree also looks one level up).

    ``APEIRO_SHARED_TESTDATA`` overrides the location.
    """
    env = os.environ.get("APEIRO_SHARED_TESTDATA")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "testdata", REPO.parent.parent / "shared" / "testdata"]
    for c in candidates:
        if (c / "ocm-vectors").is_dir():
            return c / "ocm-vectors"
    pytest.skip(
        f"OCM vectors not found (looked in {', '.join(str(c) for c in candidates)}); "
        "they live in ../shared/testdata/ocm-vectors next to the repository"
    )


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pub_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def make_cert(
    subject_cn: str,
    key: rsa.RSAPrivateKey,
    issuer_cert: x509.Certificate | None = None,
    issuer_key: rsa.RSAPrivateKey | None = None,
    *,
    ca: bool = False,
    code_signing: bool = True,
    org: str = "Apeiro",
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = [ExtendedKeyUsageOID.CODE_SIGNING] if code_signing else [ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def descriptor(name: str, version: str, provider: str, **component: Any) -> dict[str, Any]:
    """An OCM v2 component descriptor with every list empty unless given in ``component``."""
    lists: dict[str, Any] = {"repositoryContexts": [], "sources": [], "componentReferences": [], "resources": []}
    return {
        "meta": {"schemaVersion": "v2"},
        "component": {"name": name, "version": version, "provider": provider, **lists, **component},
    }
