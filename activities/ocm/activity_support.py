"""What every OCM activity shares: operator errors, heartbeats while a request waits, registry clients
built from a RepositorySpec (secrets resolved here, never in workflow history), and progress recorded
with the server before the activity goes on."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.bounded import RemoteDataError
from activities.liveness import keep_alive, record_heartbeat_now
from activities.ocm.errors import OCMError
from activities.ocm.layout import RepoBase
from activities.ocm.oci import Credentials, RegistryClient, RemoteDataRejected
from activities.secrets import SecretError, resolve_secret
from definitions.ocm import RepositorySpec

T = TypeVar("T")


def _operator_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """OCM errors -> ApplicationError with the error kind as type; non-retryable unless transient.

    Remote data past a cap and a ``RecursionError`` (a document nested deeper than any parser on the
    path allows, e.g. in a walk over an index of indexes) are non-retryable too: the registry serves the
    same bytes on every attempt, so a retry only burns the worker again.
    """

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except OCMError as exc:
            raise ApplicationError(str(exc), type=exc.kind, non_retryable=not exc.retryable) from None
        except SecretError as exc:
            raise ApplicationError(str(exc), type="SecretUnavailable", non_retryable=True) from None
        except RemoteDataError as exc:
            raise ApplicationError(str(exc), type=RemoteDataRejected.kind, non_retryable=True) from None
        except RecursionError:
            raise ApplicationError(
                f"{fn.__name__}: remote data nested too deep to process (RecursionError); the source serves "
                "the same document on every attempt, so this is not retried: fix or replace it at the source",
                type=RemoteDataRejected.kind,
                non_retryable=True,
            ) from None

    return wrapper


def _kept_alive(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Heartbeat every couple of seconds while ``fn`` runs: one registry request may take up to its
    60 s timeout, the heartbeat timeout is 10 s (workflows/activity_options.py). Not for
    ``ocm.copy_blob``, whose heartbeats must carry the exact upload state."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        async with keep_alive():
            return await fn(*args, **kwargs)

    return wrapper


def client_for(spec: RepositorySpec, registry_url: str | None = None) -> RegistryClient:
    """A client for the registry of ``spec`` (or another registry met on the way, anonymously)."""
    base = RepoBase.parse(spec.url)
    if registry_url is not None and RepoBase.parse(registry_url).host != base.host:
        return RegistryClient(registry_url, ca_bundle=spec.ca_bundle)
    creds = Credentials(
        username=resolve_secret(spec.username_ref).strip() if spec.username_ref else spec.username,
        password=resolve_secret(spec.password_ref) if spec.password_ref else None,
        token=resolve_secret(spec.token_ref).strip() if spec.token_ref else None,
    )
    return RegistryClient(base.registry_url, creds, ca_bundle=spec.ca_bundle)


def _registry_url_for(host: str, like: RepositorySpec) -> str:
    """URL of a registry named in an image reference (which carries no scheme).

    The source registry's own host and loopback hosts use the source's scheme (local registries often
    speak plain HTTP); any other registry is reached over HTTPS.
    """
    base = RepoBase.parse(like.url)
    scheme = base.registry_url.split("://")[0]
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    if host == base.host or name in ("localhost", "127.0.0.1", "[::1]"):
        return f"{scheme}://{host}"
    return f"https://{host}"


async def record_progress(details: dict[str, Any]) -> None:
    """Heartbeat ``details`` and wait until the server has recorded them.

    The SDK's ``activity.heartbeat`` is throttled (up to 80% of the heartbeat timeout), so after a
    crash the server may hold an upload URL several chunks old. distribution validates the upload
    state in that URL against what it holds and *cancels* the upload on a mismatch, so a stale URL
    would throw the upload away. Recording each chunk's URL with its own RPC keeps the recorded state
    at most one chunk behind.
    """
    try:
        activity.client()
    except RuntimeError:  # no client (e.g. ActivityEnvironment in unit tests): plain heartbeat
        activity.heartbeat(details)
        return
    await record_heartbeat_now(details)
