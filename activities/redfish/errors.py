"""Turn what sushy and requests raise into errors an operator (and Temporal's retry policy) can act on.

Retryable: connection refused/timeouts, 5xx (a BMC answering 503 until it recovers).
Non-retryable: wrong credentials (401/403), TLS verification failures, 4xx on an action.
Every message names the BMC.
"""

from __future__ import annotations

import ssl

import requests
from sushy import exceptions as sx
from temporalio.exceptions import ApplicationError

from activities.bounded import RemoteDataError


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def is_tls_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, requests.exceptions.SSLError | ssl.SSLError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(e) or "SSLError" in type(e).__name__:
            return True
    return False


def classify(exc: BaseException, bmc: str) -> ApplicationError:
    """An ApplicationError with a type operators can match on and a message naming the BMC."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, sx.AccessError):
        return ApplicationError(
            f"BMC {bmc} rejected the credentials (HTTP {exc.status_code}); check the username and the "
            "password the credentials reference points to",
            type="BmcAuthenticationFailed",
            non_retryable=True,
        )
    if isinstance(exc, sx.ConnectionError):
        if is_tls_error(exc):
            return ApplicationError(
                f"TLS handshake with BMC {bmc} failed ({_short(exc)}); give tls.ca_bundle with the BMC's "
                "CA, or tls.insecure: true for a lab BMC",
                type="BmcTlsError",
                non_retryable=True,
            )
        return ApplicationError(f"BMC {bmc} is unreachable: {_short(exc)}", type="BmcUnreachable")
    if isinstance(exc, sx.ServerSideError):
        return ApplicationError(
            f"BMC {bmc} answered HTTP {exc.status_code} ({exc.detail or 'server error'}); will retry",
            type="BmcServerError",
        )
    if isinstance(exc, sx.ResourceNotFoundError):
        return ApplicationError(f"BMC {bmc}: {exc}", type="RedfishNotFound", non_retryable=True)
    if isinstance(exc, sx.HTTPError):
        return ApplicationError(
            f"BMC {bmc} rejected the request: HTTP {exc.status_code} {exc.detail or exc}",
            type="RedfishOperationRejected",
            non_retryable=True,
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return ApplicationError(f"BMC {bmc}: {_short(exc)}", type="BmcUnreachable")
    if isinstance(exc, RemoteDataError | RecursionError):
        return ApplicationError(
            f"BMC {bmc} sent an answer the worker refuses to read: {_short(str(exc) or 'nested too deeply')}",
            type="BmcAnswerRejected",
            non_retryable=True,
        )
    return ApplicationError(f"BMC {bmc}: {type(exc).__name__}: {exc}", type="RedfishError")


def _short(exc: BaseException | str) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."
