"""Connecting to a BMC through sushy with sushy's own retry loops off (Temporal owns retries).

sushy retries a 5xx GET ten times, 3 s apart, and a failed connection three times, 2 s apart; a
worker thread stuck in those loops hides a BMC's state from Temporal's retry policy and heartbeats.
:class:`NoRetryConnector` makes every request a single attempt.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
import requests.utils
import sushy
from sushy import auth as sushy_auth
from sushy import connector as sushy_connector

from activities.bounded import MAX_BMC_BYTES, loads_strict, read_response_sync
from activities.secrets import resolve_secret
from definitions.server import BmcConnection


def cap_response(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """requests response hook: read at most MAX_BMC_BYTES, and only strict JSON of bounded depth.

    Runs before sushy looks at the answer (requests are streamed), so an endless or deeply nested
    answer from a BMC fails the request with RemoteDataError (non-retryable ``BmcAnswerRejected``)
    instead of filling the worker's memory or raising RecursionError deep inside sushy.
    """
    source = f"BMC answer {response.request.method} {response.url}"
    data = read_response_sync(response, MAX_BMC_BYTES, source)
    response._content = data
    response._content_consumed = True
    if data and "json" in response.headers.get("content-type", ""):
        loads_strict(data, source)
    return response


class NoRetryConnector(sushy_connector.Connector):
    """A sushy connector that makes exactly one attempt per request, with capped reads."""

    def _op(
        self,
        method: str,
        path: str = "",
        data: Any = None,
        headers: Any = None,
        blocking: bool = False,
        timeout: Any = None,
        server_side_retries_left: int | None = None,
        allow_reauth: bool = True,
        **kwargs: Any,
    ) -> Any:
        return super()._op(
            method,
            path,
            data=data,
            headers=headers,
            blocking=blocking,
            timeout=timeout,
            server_side_retries_left=0,
            allow_reauth=allow_reauth,
            stream=True,
            hooks={"response": [cap_response]},
            **kwargs,
        )


def freeze_environment(connector: sushy_connector.Connector, url: str) -> None:
    """Read the environment's proxy settings for this BMC once, at connect, and stop the connector's
    ``requests.Session`` from reading the environment again on every request.

    With ``trust_env`` on, requests scans every environment variable for ``*_proxy`` on each request
    (``merge_environment_settings``, then ``should_bypass_proxies``): ~0.5 ms per request with 35
    variables, ~8 ms with 1,000 (a Kubernetes pod gets several per Service of its namespace), under
    the GIL, 14 requests per inventory. Same outcome: ``HTTP(S)_PROXY`` / ``ALL_PROXY`` /
    ``NO_PROXY`` for this URL as of the connect (the CA bundle variables: :func:`environment_verify`).
    """
    session: requests.Session = connector._session
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.trust_env = False


def environment_verify(verify: bool | str) -> bool | str:
    """``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` when verification is on without a bundle of the
    site's own, as requests would pick them per request with ``trust_env``."""
    if verify is True:
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return verify


class NoAuth(sushy_auth.AuthBase):
    """For BMCs (and mockups) without authentication: sends no Authorization header at all."""

    def _do_authenticate(self) -> None:
        return None

    def can_refresh_session(self) -> bool:
        return False


def connect(conn: BmcConnection) -> sushy.Sushy:
    """Open a sushy root for a BMC; resolves the password reference here, inside the activity."""
    verify = environment_verify(conn.tls.verify())
    # server_side_retries=1 makes the connector's transport loop a single attempt; _op forces the
    # 5xx retry budget to 0.
    connector = NoRetryConnector(
        conn.url,
        verify=verify,
        server_side_retries=1,
        server_side_retries_delay=0,
        default_request_timeout=conn.timeout_s,
        connect_timeout=min(conn.timeout_s, 3.0 if conn.probe else 10.0),
    )
    freeze_environment(connector, conn.url)
    auth: sushy_auth.AuthBase | None = None
    if conn.credentials is not None:
        password = resolve_secret(conn.credentials.password_ref)
        kind = {
            "auto": sushy_auth.SessionOrBasicAuth,
            "basic": sushy_auth.BasicAuth,
            "session": sushy_auth.SessionAuth,
        }[conn.credentials.auth]
        auth = kind(username=conn.credentials.username, password=password)
    else:
        auth = NoAuth()
    return sushy.Sushy(
        conn.url,
        auth=auth,
        connector=connector,
        verify=verify,
        server_side_retries=0,
        server_side_retries_delay=0,
    )


class ClientCache:
    """Reuse one sushy root per BMC across activities (a session login per call would dominate the
    cost of an inventory). Entries are dropped when a call through them fails."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, sushy.Sushy] = {}

    @staticmethod
    def key(conn: BmcConnection) -> str:
        return conn.model_dump_json()

    def get(self, conn: BmcConnection) -> sushy.Sushy:
        k = self.key(conn)
        with self._lock:
            client = self._clients.get(k)
        if client is not None:
            return client
        client = connect(conn)
        with self._lock:
            self._clients.setdefault(k, client)
            return self._clients[k]

    def drop(self, conn: BmcConnection) -> None:
        with self._lock:
            self._clients.pop(self.key(conn), None)

    def close(self) -> None:
        with self._lock:
            self._clients.clear()
