"""Site definitions, identities and discovery diffs (pure, no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from definitions.server import (
    DiscoverInput,
    ServerSummary,
    SiteDefinition,
    SystemInventory,
    server_identity,
)
from workflows.server import chunks, diff_snapshots


def site(**kw: object) -> SiteDefinition:
    base: dict[str, object] = {
        "name": "s",
        "credentials": {"lab": {"username": "u", "password_ref": "env:PW"}},
        "default_credentials": "lab",
    }
    base.update(kw)
    return SiteDefinition.model_validate(base)


def test_duplicate_bmc_is_reported_with_both_places() -> None:
    s = site(
        bmcs=[{"url": "https://10.0.0.1"}], ranges=[{"start": "10.0.0.1", "end": "10.0.0.2", "ports": [443]}]
    )
    assert any("duplicate BMC https://10.0.0.1:443" in p for p in s.problems())  # default port made explicit
    s2 = site(bmcs=[{"url": "https://10.0.0.1:443/"}], ranges=[{"start": "10.0.0.1", "end": "10.0.0.2"}])
    assert any(
        "duplicate BMC https://10.0.0.1:443" in p and "bmcs[0]" in p and "ranges[0]" in p
        for p in s2.problems()
    )


def test_password_instead_of_reference_is_refused_without_echoing_it() -> None:
    # Refused by the model itself (before start), and pydantic's text does not quote the value.
    with pytest.raises(ValidationError) as caught:
        site(credentials={"lab": {"username": "u", "password_ref": "hunter2"}}, bmcs=[{"url": "https://b"}])
    assert "must be a secret reference" in str(caught.value) and "hunter2" not in str(caught.value)


def test_unknown_credentials_group_and_empty_site() -> None:
    assert any(
        "unknown credentials group 'x'" in p
        for p in site(bmcs=[{"url": "https://b", "credentials": "x"}]).problems()
    )
    assert site().problems() == ["the site lists no BMCs (give bmcs or ranges)"]


def test_address_range_expands_with_ports_and_credentials() -> None:
    s = site(ranges=[{"start": "192.0.2.10", "end": "192.0.2.12", "ports": [443, 8443]}])
    assert s.problems() == []
    conns = s.connections()
    assert [c.url for c in conns][:2] == ["https://192.0.2.10:443", "https://192.0.2.10:8443"]
    assert len(conns) == 6 and all(c.credentials and c.credentials.password_ref == "env:PW" for c in conns)
    assert all(c.probe for c in conns)  # scanned addresses: short connect timeout, one retry


def test_identity_prefers_uuid_then_serial() -> None:
    assert server_identity("ABC-1", "S1", "u", "/p") == "abc-1"
    assert server_identity("00000000-0000-0000-0000-000000000000", "S1", "u", "/p") == "serial-S1"
    assert server_identity(None, None, "u", "/p").startswith("bmc-")


def test_fingerprint_ignores_power_state() -> None:
    a = SystemInventory(bmc_url="u", system_path="/p", id="1", uuid="x", power_state="On", memory_gib=8)
    b = a.model_copy(update={"power_state": "Off"})
    c = a.model_copy(update={"memory_gib": 16})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_diff_added_removed_changed() -> None:
    def s(i: str, mem: float) -> ServerSummary:
        return ServerSummary(identity=i, bmc_url="u", system_path=f"/{i}", memory_gib=mem)

    d = diff_snapshots([s("a", 8), s("b", 8)], [s("b", 16), s("c", 8)])
    assert d.added == ["c"] and d.removed == ["a"]
    assert [(c.identity, c.fields) for c in d.changed] == [("b", ["memory_gib"])]


def test_chunks_and_step_types_registered() -> None:
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    from definitions.steptypes import REGISTRY as reg

    for name in ("server.discover", "server.provision", "server.provision_one", "server.register"):
        assert name in reg
    assert reg.get("server.discover").args_model is DiscoverInput


def test_validate_site_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from workers.cli import baremetal

    parser = argparse.ArgumentParser()
    baremetal.register(parser.add_subparsers())
    good = tmp_path / "good.yaml"
    good.write_text(
        "site:\n  name: edge\n  credentials: {lab: {username: u, password_ref: 'env:PW'}}\n"
        "  default_credentials: lab\n  bmcs: [{url: 'https://10.0.0.1'}]\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: edge\nbmcs: [{url: 'https://10.0.0.1'}, {url: 'https://10.0.0.1:443'}]\nextra: 1\n")
    args = parser.parse_args(["baremetal", "validate-site", str(good)])
    assert args.func(args) == 0 and "1 BMC(s), valid" in capsys.readouterr().out
    args = parser.parse_args(["baremetal", "validate-site", str(bad)])
    assert args.func(args) == 1 and "extra: Extra inputs are not permitted" in capsys.readouterr().err
    bad.write_text("name: edge\nbmcs: [{url: 'https://10.0.0.1'}, {url: 'https://10.0.0.1:443'}]\n")
    assert args.func(args) == 1 and "duplicate BMC https://10.0.0.1:443" in capsys.readouterr().err
