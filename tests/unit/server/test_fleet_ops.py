"""Server fleet operations without a BMC: drift rules, rollout validation for kind server (the
metal-operator refusal among them), selection from the site inventory by labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.redfish.activities import RedfishActivities
from activities.redfish.store import FileInventoryStore
from definitions.rollout import RolloutInput
from definitions.server import (
    FirmwareItem,
    ImageRecord,
    SelectServersInput,
    ServerState,
    ServerSummary,
    ServerUpdateInput,
    SiteDefinition,
    SiteSnapshot,
)
from workflows.server_update import bios_drift, firmware_drift, image_drift

SHA_A, SHA_B = "a" * 64, "b" * 64


def site(**more: Any) -> SiteDefinition:
    return SiteDefinition.model_validate(
        {
            "name": "edge-7",
            "credentials": {"lab": {"username": "admin", "password_ref": "env:BMC_PASSWORD"}},
            "default_credentials": "lab",
            "bmcs": [
                {"url": "https://10.0.0.1", "labels": {"rack": "r1"}},
                {"url": "https://10.0.0.2", "labels": {"rack": "r2"}},
            ],
            **more,
        }
    )


def server_input(**kw: Any) -> ServerUpdateInput:
    ref = {"identity": "s1", "bmc": {"url": "https://10.0.0.1"}, "system_path": "/redfish/v1/Systems/1"}
    return ServerUpdateInput.model_validate({"server": ref, "site": "edge-7", **kw})


def test_firmware_drift_compares_component_versions() -> None:
    inp = server_input(
        operation="firmware",
        firmware=[
            {"image_uri": "http://i/bios-2.0.0.bin", "component": "BIOS", "version": "2.0.0"},
            {"image_uri": "http://i/bmc-1.1.0.bin", "component": "BMC", "version": "1.1.0"},
            {"image_uri": "http://i/nic-3.bin", "component": "NIC", "version": "3"},
        ],
    )
    state = ServerState(firmware=[FirmwareItem(id="BIOS", version="2.0.0"), FirmwareItem(id="BMC", version="1.0.0")])
    assert firmware_drift(inp, state) == ["BMC 1.0.0 -> 1.1.0", "NIC (absent) -> 3"]


def test_bios_drift_tells_pending_from_differing() -> None:
    inp = server_input(operation="bios", bios_attributes={"A": "on", "B": "off", "C": 1})
    state = ServerState(bios_attributes={"A": "on", "B": "on", "C": 0}, bios_pending={"C": 1})
    assert bios_drift(inp, state) == (["B on -> off"], ["C 0 -> 1"])


def test_image_drift_by_recorded_checksum() -> None:
    inp = server_input(operation="image", image={"url": "http://i/gl-1592.1.iso", "sha256": SHA_B})
    assert image_drift(inp, ServerState()) == [f"image no image recorded -> http://i/gl-1592.1.iso ({'b' * 12})"]
    same = ServerState(image=ImageRecord(url="http://i/old-name.iso", sha256=SHA_B.upper()))
    assert image_drift(inp, same) == []
    old = ServerState(image=ImageRecord(url="http://i/gl-1592.0.iso", sha256=SHA_A))
    assert image_drift(inp, old)[0].startswith("image http://i/gl-1592.0.iso (aaaaaaaaaaaa) -> ")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"operation": "firmware", "firmware": [{"image_uri": "http://i/x.bin"}]}, "component and version"),
        ({"operation": "firmware"}, "at least one update"),
        ({"operation": "bios"}, "at least one attribute"),
        ({"operation": "image"}, "image: give"),
    ],
)
def test_desired_state_must_be_comparable(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        server_input(**kw)


def rollout(operation: str = "server.firmware", with_: dict[str, Any] | None = None, **kw: Any) -> RolloutInput:
    data: dict[str, Any] = {
        "operation": operation,
        "with": with_
        if with_ is not None
        else {"firmware": [{"image_uri": "http://i/bios-2.0.0.bin", "component": "BIOS", "version": "2.0.0"}]},
        "site": site().model_dump(),
        "rollout": {"selector": {"kind": "server", "site": "edge-7"}, "inUse": "drain", "drainTimeout": "2m"},
    }
    data.update(kw)
    return RolloutInput.model_validate(data)


def test_server_rollout_sets_per_target_arguments() -> None:
    inp = rollout()
    from definitions.server import ServerTarget

    args = inp.server_args(
        ServerTarget(identity="u1", bmc_url="https://10.0.0.2:443", system_path="/redfish/v1/Systems/1")
    )
    assert args["operation"] == "firmware" and args["in_use"] == "drain" and args["drain_timeout_s"] == 120
    assert args["server"]["bmc"]["url"] == "https://10.0.0.2:443" and args["site"] == "edge-7"
    assert args["server"]["bmc"]["credentials"]["password_ref"] == "env:BMC_PASSWORD"  # a reference, no secret


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"with": {"firmware": [{"image_uri": "http://i/b.bin"}]}}, "with: firmware[0]: component and version are required"),
        ({"with": {"bios_attributes": {"A": "1"}, "server": {}}}, "with.server is set per target"),
        ({"site": None}, "needs the site definition"),
        ({"rollout": {"selector": {"kind": "server", "site": "other"}}}, "selector.site 'other' is not the site"),
        ({"rollout": {"selector": {"kind": "shoot"}}}, "set rollout.selector.kind: server"),
        ({"operation": "cluster.hibernate", "with": {"enabled": True}}, "set rollout.selector.kind: shoot"),
        ({"rollout": {"selector": {"kind": "server"}, "inUse": "reboot"}}, "inUse"),
    ],
)
def test_bad_server_rollouts_are_refused_with_the_path(change: dict[str, Any], message: str) -> None:
    change = dict(change)
    op, with_ = change.pop("operation", "server.firmware"), change.pop("with", None)
    with pytest.raises(ValidationError) as err:
        rollout(op, with_, **change)
    assert message in str(err.value)


def test_ironcore_site_is_refused_naming_the_limitation() -> None:
    ironcore = site(backend="ironcore").model_dump()
    for op, what in (("server.firmware", "BIOSSettings"), ("server.bios", "BMCVersion"), ("server.image", "re-claim")):
        with_ = {
            "server.firmware": None,
            "server.bios": {"bios_attributes": {"A": "1"}},
            "server.image": {"image": {"url": "http://i/gl.iso", "sha256": SHA_A}},
        }[op]
        with pytest.raises(ValidationError) as err:
            rollout(op, with_, site=ironcore)
        text = str(err.value)
        assert "backend ironcore: metal-operator owns its servers" in text
        assert what in text or "claim the server again" in text


def activities(tmp_path: Path) -> RedfishActivities:
    acts = RedfishActivities(store=FileInventoryStore(tmp_path))
    acts.store.save_snapshot(
        SiteSnapshot(
            site="edge-7",
            servers=[
                ServerSummary(
                    identity=f"u{i}",
                    bmc_url=f"https://10.0.0.{i}:443",
                    system_path="/redfish/v1/Systems/1",
                    manufacturer="Contoso",
                    model="R1" if i < 2 else "R2",
                )
                for i in (1, 2, 3)
            ],
        )
    )
    return acts


def test_select_servers_by_site_and_inventory_labels(tmp_path: Path) -> None:
    acts = activities(tmp_path)
    labels = site().bmc_labels()
    pick = acts.select_servers(SelectServersInput(site="edge-7", match_labels={"rack": "r2"}, bmc_labels=labels))
    assert [t.identity for t in pick] == ["u2"] and pick[0].labels["apeiro.io/model"] == "R2"
    pick = acts.select_servers(SelectServersInput(site="edge-7", match_labels={"apeiro.io/model": "R2"}))
    assert [t.identity for t in pick] == ["u2", "u3"]
    pick = acts.select_servers(SelectServersInput(site="edge-7", names=["u3", "u1"]))
    assert [t.identity for t in pick] == ["u1", "u3"]


def test_select_servers_matching_nothing_says_why(tmp_path: Path) -> None:
    acts = activities(tmp_path)
    with pytest.raises(ApplicationError) as err:
        acts.select_servers(SelectServersInput(site="edge-7", match_labels={"rack": "r9"}))
    assert err.value.type == "SelectorMatchesNothing" and "rack=r9 (3 discovered)" in str(err.value)
    with pytest.raises(ApplicationError) as err:
        acts.select_servers(SelectServersInput(site="never-discovered"))
    assert "run server.discover for the site first" in str(err.value)


def test_image_records_round_trip(tmp_path: Path) -> None:
    store = FileInventoryStore(tmp_path)
    assert store.get_image("edge-7", "u1") is None
    store.put_image("edge-7", "u1", ImageRecord(url="http://i/gl.iso", sha256=SHA_A, by="wf"))
    assert store.get_image("edge-7", "u1") == ImageRecord(url="http://i/gl.iso", sha256=SHA_A, by="wf")
