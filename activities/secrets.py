"""Resolve secret references inside activities, so secrets never enter workflow history.

A reference names where a secret lives, never the secret itself:

- ``env:NAME``: the environment variable NAME of the worker process,
- ``file:/path``: the file's content (one trailing newline stripped),
- ``k8s:namespace/secret#key``: key ``key`` of a Kubernetes Secret (kubeconfig/in-cluster config).

The lead engineer owns this module on main; this copy keeps the same signature so the server
lifecycle can be merged without it.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from temporalio.exceptions import ApplicationError

REF_PATTERN = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|k8s:[^/#]+/[^/#]+#.+)$")


class SecretNotFound(ApplicationError):
    """A reference that cannot be resolved: a retry will not help until someone provides it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="SecretNotFound", non_retryable=True)


def is_reference(value: str) -> bool:
    return bool(REF_PATTERN.match(value))


def resolve_secret(ref: str) -> str:
    """Return the secret a reference points to; raise a non-retryable error naming the reference."""
    if ref.startswith("env:"):
        name = ref[4:]
        value = os.environ.get(name)
        if value is None:
            raise SecretNotFound(
                f"secret reference {ref}: environment variable {name} is not set on this worker"
            )
        return value
    if ref.startswith("file:"):
        path = Path(ref[5:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise SecretNotFound(f"secret reference {ref}: cannot read {path}: {exc.strerror}") from None
        return text[:-1] if text.endswith("\n") else text
    if ref.startswith("k8s:"):
        return _resolve_k8s(ref)
    raise SecretNotFound(
        f"{ref[:8]}... is not a secret reference; use env:NAME, file:/path or k8s:namespace/secret#key"
    )


def _resolve_k8s(ref: str) -> str:
    match = re.match(r"^k8s:([^/#]+)/([^/#]+)#(.+)$", ref)
    if not match:
        raise SecretNotFound(f"secret reference {ref}: expected k8s:namespace/secret#key")
    namespace, name, key = match.groups()
    from kubernetes import client, config  # imported lazily: only workers that use k8s refs need it

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    secret = client.CoreV1Api().read_namespaced_secret(name, namespace)
    data = secret.data or {}
    if key not in data:
        raise SecretNotFound(f"secret reference {ref}: secret {namespace}/{name} has no key {key!r}")
    return base64.b64decode(data[key]).decode()
