"""Resolve secret references inside activities, so secrets never enter workflow history.

References: ``env:NAME`` (an environment variable), ``file:/path`` (a file's content), and
``k8s:namespace/secret#key`` (a key of a Secret in the cluster named by $APEIRO_SECRETS_KUBECONFIG,
or in-cluster config).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path


class SecretRefError(ValueError):
    """A reference that cannot be resolved; the message names the reference kind and what is missing."""


def resolve_secret(ref: str) -> str:
    scheme, sep, rest = ref.partition(":")
    if not sep or not rest:
        raise SecretRefError(
            f"secret reference {ref!r} must look like env:NAME, file:/path or k8s:ns/name#key"
        )
    if scheme == "env":
        value = os.environ.get(rest)
        if value is None:
            raise SecretRefError(f"environment variable {rest} (from {ref!r}) is not set in the worker")
        return value
    if scheme == "file":
        try:
            return Path(rest).read_text()
        except OSError as exc:
            raise SecretRefError(f"cannot read {rest} (from {ref!r}) on the worker: {exc.strerror}") from None
    if scheme == "k8s":
        return _from_kubernetes(rest, ref)
    raise SecretRefError(f"unknown secret reference scheme {scheme!r} in {ref!r}; use env:, file: or k8s:")


def _from_kubernetes(rest: str, ref: str) -> str:
    path, _, key = rest.partition("#")
    namespace, _, name = path.partition("/")
    if not (namespace and name and key):
        raise SecretRefError(f"{ref!r}: expected k8s:namespace/secret#key")
    from kubernetes import client, config

    kubeconfig = os.environ.get("APEIRO_SECRETS_KUBECONFIG")
    api = config.new_client_from_config(kubeconfig) if kubeconfig else None
    if api is None:
        config.load_incluster_config()
        api = client.ApiClient()
    with api:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace, _request_timeout=10)
    data = secret.data or {}
    if key not in data:
        raise SecretRefError(f"{ref!r}: secret {namespace}/{name} has no key {key!r}")
    return base64.b64decode(data[key]).decode()
