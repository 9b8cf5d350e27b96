"""The simulated metal-operator against the Redfish emulator: a registered BMC becomes Servers that only
metal-operator reports on; claims bind, power and release servers; failures show as Error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.registration.claims import ClaimActivities
from definitions.server_claims import ClaimRequest, ReleaseRequest
from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator
from tests.server_fixtures import BMC_PASSWORD, metal_api
from tests.support import poll_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("metal-operator")]

M = "/apis/metal.ironcore.dev/v1alpha1"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with metal_api(tmp_path_factory.mktemp("metal-api"), poll_seconds="0.5") as part:
        yield part.url


@pytest.fixture(scope="module")
def api(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def bmc_a(api: httpx.Client, land: Landscape) -> list[dict[str, Any]]:
    """bmc-a registered and both its Servers Available (what every test here starts from)."""
    register(api, land, "bmc-a")
    return wait_for(
        lambda: servers(api, "bmc-a"),
        lambda ss: len(ss) == 2 and all((s.get("status") or {}).get("state") == "Available" for s in ss),
    )


def wait_for(fetch: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    return poll_until(fetch, check, timeout, interval=0.2)


def emulator(land: Landscape) -> RedfishEmulator:
    return next(p for p in land.parts if isinstance(p, RedfishEmulator))


def register(api: httpx.Client, land: Landscape, name: str, password: str = BMC_PASSWORD) -> None:
    port = int(emulator(land).url.rsplit(":", 1)[1].strip("/"))
    secret = {
        "apiVersion": "metal.ironcore.dev/v1alpha1",
        "kind": "BMCSecret",
        "metadata": {"name": name},
        "stringData": {"username": "admin", "password": password},
    }
    bmc = {
        "apiVersion": "metal.ironcore.dev/v1alpha1",
        "kind": "BMC",
        "metadata": {"name": name},
        "spec": {
            "access": {"ip": "127.0.0.1", "macAddress": "aa:bb:cc:dd:ee:01"},
            "bmcSecretRef": {"name": name},
            "protocol": {"name": "Redfish", "port": port, "scheme": "http"},
        },
    }
    assert api.post(f"{M}/bmcsecrets?fieldValidation=Strict", json=secret).status_code == 201
    r = api.post(f"{M}/bmcs?fieldValidation=Strict", json=bmc)
    assert r.status_code == 201, r.text


def servers(api: httpx.Client, bmc: str) -> list[dict[str, Any]]:
    items = api.get(f"{M}/servers").json()["items"]
    return [s for s in items if (s["spec"].get("bmcRef") or {}).get("name") == bmc]


def test_a_bmc_becomes_available_servers_and_a_claim_binds_and_powers_one(
    api: httpx.Client, land: Landscape, bmc_a: list[dict[str, Any]]
) -> None:
    found = bmc_a
    assert [s["metadata"]["name"] for s in found] == ["bmc-a-system-0", "bmc-a-system-1"]
    uuids = {str(s["uuid"]) for s in emulator(land).systems}
    assert {s["spec"]["systemUUID"] for s in found} == uuids
    assert all(s["status"]["networkInterfaces"] for s in found)
    bmc = api.get(f"{M}/bmcs/bmc-a").json()
    assert bmc["status"]["state"] == "Enabled"

    claim = {
        "apiVersion": "metal.ironcore.dev/v1alpha1",
        "kind": "ServerClaim",
        "metadata": {"name": "web"},
        "spec": {
            "image": "ghcr.io/gardenlinux/gardenlinux:1877.0",
            "power": "On",
            "serverRef": {"name": "bmc-a-system-1"},
        },
    }
    assert api.post(f"{M}/namespaces/default/serverclaims?fieldValidation=Strict", json=claim).status_code == 201
    bound = wait_for(
        lambda: api.get(f"{M}/namespaces/default/serverclaims/web").json(),
        lambda c: (c.get("status") or {}).get("phase") == "Bound",
    )
    assert bound["status"]["phase"] == "Bound"
    server = wait_for(
        lambda: api.get(f"{M}/servers/bmc-a-system-1").json(), lambda s: s.get("status", {}).get("powerState") == "On"
    )
    assert server["status"]["state"] == "Reserved" and server["status"]["powerState"] == "On"
    assert server["spec"]["serverClaimRef"] == {"name": "web", "namespace": "default"}

    assert api.delete(f"{M}/namespaces/default/serverclaims/web").status_code == 200
    released = wait_for(
        lambda: api.get(f"{M}/servers/bmc-a-system-1").json(),
        lambda s: s.get("status", {}).get("state") == "Available" and "serverClaimRef" not in s["spec"],
    )
    assert released["status"]["state"] == "Available" and "serverClaimRef" not in released["spec"]


def test_a_claim_without_a_matching_server_stays_unbound(api: httpx.Client) -> None:
    claim = {
        "apiVersion": "metal.ironcore.dev/v1alpha1",
        "kind": "ServerClaim",
        "metadata": {"name": "none"},
        "spec": {"image": "i", "power": "On", "serverSelector": {"matchLabels": {"site": "nowhere"}}},
    }
    assert api.post(f"{M}/namespaces/default/serverclaims", json=claim).status_code == 201
    got = wait_for(
        lambda: api.get(f"{M}/namespaces/default/serverclaims/none").json(),
        lambda c: (c.get("status") or {}).get("phase") == "Unbound",
        timeout=10,
    )
    assert got["status"]["phase"] == "Unbound"


def test_bad_credentials_put_the_bmc_in_error(api: httpx.Client, land: Landscape) -> None:
    register(api, land, "bmc-bad", password="wrong")
    bmc = wait_for(lambda: api.get(f"{M}/bmcs/bmc-bad").json(), lambda b: bool((b.get("status") or {}).get("state")))
    assert bmc["status"]["state"] == "Error"
    assert bmc["status"]["conditions"][0]["reason"] == "AuthenticationFailed"
    assert servers(api, "bmc-bad") == []


def test_a_server_metal_operator_reports_in_error(api: httpx.Client, land: Landscape) -> None:
    fault = {"fault": "server-error", "server": "bmc-e-system-0"}
    assert api.post("/admin/metal/faults", json=fault).status_code == 200
    try:
        register(api, land, "bmc-e")
        s = wait_for(
            lambda: api.get(f"{M}/servers/bmc-e-system-0").json(),
            lambda s: s.get("kind") == "Server" and (s.get("status") or {}).get("state") == "Error",
        )
        assert s["status"]["state"] == "Error"
    finally:
        api.delete("/admin/metal/faults")


def test_claim_activity_binds_powers_and_releases(
    api: httpx.Client, api_url: str, bmc_a: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APEIRO_KUBE_API", api_url)
    acts = ClaimActivities(poll_interval=0.1)
    req = ClaimRequest(
        name="site-a-0",
        image="ghcr.io/gardenlinux/gardenlinux:1877.0",
        server="bmc-a-system-0",
        bind_timeout_seconds=20,
        power_timeout_seconds=30,
    )
    got = acts.claim_server(req)
    assert (got.server, got.power_state, got.created) == ("bmc-a-system-0", "On", True)
    assert acts.claim_server(req).created is False  # a retried activity finds its claim
    assert api.get(f"{M}/servers/bmc-a-system-0").json()["status"]["state"] == "Reserved"
    assert acts.release_server(ReleaseRequest(name="site-a-0")) is True
    assert acts.release_server(ReleaseRequest(name="site-a-0")) is False
    back = wait_for(
        lambda: api.get(f"{M}/servers/bmc-a-system-0").json(), lambda s: s.get("status", {}).get("state") == "Available"
    )
    assert back["status"]["state"] == "Available"


def test_claim_activity_with_no_matching_server_deletes_the_claim(
    api: httpx.Client, api_url: str, bmc_a: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APEIRO_KUBE_API", api_url)
    req = ClaimRequest(name="site-a-x", image="i", selector={"rack": "r99"}, bind_timeout_seconds=1)
    with pytest.raises(ApplicationError) as err:
        ClaimActivities(poll_interval=0.1).claim_server(req)
    assert err.value.type == "ClaimUnbound" and err.value.non_retryable and "rack" in str(err.value)
    assert api.get(f"{M}/namespaces/default/serverclaims/site-a-x").status_code == 404
