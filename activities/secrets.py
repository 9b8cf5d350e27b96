"""Resolve secret references inside activities: ``env:NAME``, ``file:/path``, ``k8s:ns/secret#key``.

Secrets never travel through workflow arguments or history; only these references do. (Written for
the OCM layer; the lead's version of this module supersedes it with the same signature.)
"""

from __future__ import annotations

import base64
import os
from pathlib import Path


class SecretError(Exception):
    """A reference cannot be resolved; the message says which and why (never the value)."""


def resolve_secret(ref: str) -> str:
    scheme, sep, rest = ref.partition(":")
    if not sep or not rest:
        raise SecretError(f"secret reference {ref!r} must look like env:NAME, file:/path or k8s:ns/name#key")
    if scheme == "env":
        value = os.environ.get(rest)
        if value is None:
            raise SecretError(f"environment variable {rest!r} (from {ref!r}) is not set on this worker")
        return value
    if scheme == "file":
        try:
            return Path(rest).read_text()
        except OSError as exc:
            raise SecretError(f"cannot read secret file {rest!r}: {exc.strerror}") from None
    if scheme == "k8s":
        ns_name, _, key = rest.partition("#")
        namespace, _, name = ns_name.partition("/")
        if not (namespace and name and key):
            raise SecretError(f"k8s secret reference {ref!r} must be k8s:namespace/name#key")
        try:
            from kubernetes import client, config

            config.load_config()
            secret = client.CoreV1Api().read_namespaced_secret(name, namespace)
        except Exception as exc:
            raise SecretError(f"cannot read Kubernetes secret {namespace}/{name}: {exc}") from None
        data = (secret.data or {}).get(key)
        if data is None:
            raise SecretError(f"Kubernetes secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data).decode()
    raise SecretError(f"unknown secret reference scheme {scheme!r} in {ref!r}; use env:, file: or k8s:")
