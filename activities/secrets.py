"""Resolve secret references inside activities (never in workflows: history is readable in the UI).

Messages quote a reference only once it parsed as one (``env:NAME`` is not a secret); a value that
is not a reference may be the secret itself and is described by kind and length only.
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.exceptions import ApplicationError

from definitions.secrets import check_secret_ref


class SecretError(ApplicationError):
    """A reference that cannot be resolved; retrying will not help until someone fixes it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="SecretUnavailable", non_retryable=True)


def resolve_secret(ref: str) -> str:
    """Return the secret a reference names. Raises SecretError saying what to fix."""
    try:
        check_secret_ref(ref)
    except ValueError as exc:  # the value may be the secret itself: never quote it
        raise SecretError(f"not a secret reference: {exc}") from None
    kind, _, where = ref.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise SecretError(f"secret reference {ref!r}: environment variable {where} is not set on this worker")
        return value
    if kind == "file":
        try:
            return Path(where).read_text().rstrip("\n")
        except OSError as exc:
            raise SecretError(f"secret reference {ref!r}: cannot read {where}: {exc.strerror}") from None
    if kind == "k8s":
        return _resolve_k8s(where, ref)
    raise SecretError(f"secret reference {ref!r}: unknown kind {kind!r}")


def _resolve_k8s(where: str, ref: str) -> str:
    """`namespace/name#key` from the Kubernetes API the worker's kubeconfig (KUBECONFIG) points at."""
    import base64

    namespace_name, _, key = where.partition("#")
    namespace, _, name = namespace_name.partition("/")
    try:
        from kubernetes import client, config  # optional: only workers that use k8s refs need it
    except ImportError:
        raise SecretError(f"secret reference {ref!r}: the kubernetes client is not installed on this worker") from None
    try:
        config.load_kube_config()
        secret = client.CoreV1Api().read_namespaced_secret(name, namespace)
    except Exception as exc:
        raise SecretError(f"secret reference {ref!r}: cannot read Secret {namespace}/{name}: {exc}") from None
    data = secret.data or {}
    if key not in data:
        raise SecretError(f"secret reference {ref!r}: Secret {namespace}/{name} has no key {key!r}")
    return base64.b64decode(data[key]).decode()
