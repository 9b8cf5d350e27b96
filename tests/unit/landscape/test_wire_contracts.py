"""Where the landscape and the product meet only over the wire, the two sides still agree.

The landscape keeps its own copies of the published contracts (search attribute names, the OS report
signal); these tests, which may import both worlds, check the copies against the product."""

from __future__ import annotations

import importlib

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from definitions import search_attributes
from definitions.server import OsReport, provision_workflow_id
from landscape import os_callback, temporal
from workers import landscape_loader


def test_dev_server_registers_the_products_search_attributes() -> None:
    assert set(temporal.SEARCH_ATTRIBUTES) == set(search_attributes.NAMES)
    assert set(temporal.SEARCH_ATTRIBUTES.values()) == {"Keyword"}


async def test_os_report_payload_decodes_into_the_products_model() -> None:
    body = {"identity": "srv-1", "hostname": "edge-1", "addresses": ["10.0.0.5"], "unknown": "dropped"}
    report = os_callback.parse_report(body)
    assert f"{os_callback.WORKFLOW_ID_PREFIX}srv-1" == provision_workflow_id("srv-1")
    # What the relay's plain client sends is what the product's workers decode.
    payloads = await DataConverter.default.encode([report])
    (decoded,) = await pydantic_data_converter.decode(payloads, [OsReport])
    assert decoded == OsReport(identity="srv-1", hostname="edge-1", addresses=["10.0.0.5"])


@pytest.mark.parametrize("body", [[], {"hostname": "x"}, {"identity": 5}, {"identity": "a", "addresses": [1]}])
def test_os_report_rejects_bad_bodies(body: object) -> None:
    with pytest.raises(ValueError):
        os_callback.parse_report(body)


def test_loader_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    assert landscape_loader.load_landscape("process").__name__ == "landscape.process"
    with pytest.raises(landscape_loader.LandscapeNotInstalled, match=r"apeiro-landscape.*pip install -e './landscape"):
        landscape_loader.load_landscape("no_such_part")

    def missing_dependency(name: str) -> object:
        raise ModuleNotFoundError("No module named 'starlette'", name="starlette")

    monkeypatch.setattr(importlib, "import_module", missing_dependency)
    with pytest.raises(landscape_loader.LandscapeNotInstalled, match="needs 'starlette'"):
        landscape_loader.load_landscape("local")
