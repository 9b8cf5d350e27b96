"""Secret references: what definitions and workflow inputs carry instead of secrets.

Workflow history is readable in the Temporal UI, so a password never travels as an argument. A
reference names where the secret lives; activities resolve it (`activities.secrets.resolve_secret`).

- ``env:NAME``                       an environment variable of the worker process
- ``file:/path``                     a file on the worker (trailing newline stripped)
- ``k8s:namespace/secret#key``       a key of a Kubernetes Secret (the garden or landscape API)
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

PREFIXES = ("env:", "file:", "k8s:")


def check_secret_ref(value: str) -> str:
    if not value.startswith(PREFIXES) or len(value.split(":", 1)[1]) == 0:
        raise ValueError(
            "must be a secret reference (env:NAME, file:/path or k8s:namespace/secret#key), "
            "never the secret itself"
        )
    if value.startswith("k8s:"):
        body = value[4:]
        if "/" not in body or "#" not in body:
            raise ValueError("a k8s secret reference is k8s:namespace/secret#key")
    return value


SecretRef = Annotated[str, AfterValidator(check_secret_ref)]
