"""Temporal connection settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.config import ConfigError, TemporalSettings


def test_defaults() -> None:
    s = TemporalSettings.from_env({})
    assert (s.address, s.namespace, s.uses_tls) == ("localhost:7233", "default", False)
    assert s.tls_config() is False


def test_mtls_and_namespace(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / name).write_text(f"-----{name}-----")
    s = TemporalSettings.from_env({
        "TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233", "TEMPORAL_NAMESPACE": "ns.acct",
        "TEMPORAL_TLS_CERT": str(tmp_path / "c.pem"), "TEMPORAL_TLS_KEY": str(tmp_path / "k.pem"),
        "TEMPORAL_TLS_CA": str(tmp_path / "ca.pem"), "TEMPORAL_TLS_SERVER_NAME": "ns.acct.tmprl.cloud",
    })
    tls = s.tls_config()
    assert not isinstance(tls, bool)
    assert tls.client_cert == b"-----c.pem-----" and tls.server_root_ca_cert == b"-----ca.pem-----"
    assert tls.domain == "ns.acct.tmprl.cloud"


def test_api_key_implies_tls_and_is_not_stored() -> None:
    s = TemporalSettings.from_env({"TEMPORAL_API_KEY": "sekret"})
    assert s.uses_tls
    assert "sekret" not in s.model_dump_json()


def test_cert_without_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="must be set together"):
        TemporalSettings.from_env({"TEMPORAL_TLS_CERT": "/x"})


def test_missing_tls_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TemporalSettings.from_env({"TEMPORAL_TLS_CA": str(tmp_path / "nope.pem")})
