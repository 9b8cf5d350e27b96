"""The BMC connector reads the environment's proxy settings once per connection, not per request
(activities/redfish/client.py ``freeze_environment``; issue 15: requests scanned every environment
variable on each of the 14 requests of an inventory)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import requests.sessions

from activities.redfish.client import NoRetryConnector, environment_verify, freeze_environment


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = b'{"Id": "RootService"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def connector(url: str) -> NoRetryConnector:
    c = NoRetryConnector(url, verify=True, server_side_retries=1, server_side_retries_delay=0)
    freeze_environment(c, url)
    return c


def test_requests_do_not_read_the_environment_again(recorder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(300):  # a pod's worth of Service variables
        monkeypatch.setenv(f"SVC_{i}_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    c = connector(recorder)
    calls = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", lambda *a, **k: calls.append(a) or real(*a, **k))
    for _ in range(5):
        assert c._op("GET", "/redfish/v1").json()["Id"] == "RootService"
    assert calls == []  # without the freeze: one scan of the environment per request
    assert len(_Recorder.seen) == 5


def test_a_proxy_from_the_environment_still_carries_the_requests(
    recorder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", recorder)  # the recorder stands in for the site's proxy
    c = connector("http://bmc.invalid:8000")
    c._op("GET", "/redfish/v1")
    assert _Recorder.seen == ["http://bmc.invalid:8000/redfish/v1"]  # absolute form: it went via the proxy
    monkeypatch.setenv("NO_PROXY", "bmc.invalid")
    assert connector("http://bmc.invalid:8000")._session.proxies == {}


def test_the_ca_bundle_variables_apply_only_without_a_bundle_of_the_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/site-ca.pem")
    assert environment_verify(True) == "/etc/site-ca.pem"
    assert environment_verify("/etc/bmc-ca.pem") == "/etc/bmc-ca.pem"
    assert environment_verify(False) is False
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    assert environment_verify(True) is True
