"""Secret references: what definitions and workflow inputs carry instead of secrets.

Workflow history is readable in the Temporal UI, so a password never travels as an argument. A
reference names where the secret lives; activities resolve it (`activities.secrets.resolve_secret`).

- ``env:NAME``                       an environment variable of the worker process
- ``file:/path``                     a file on the worker (trailing newline stripped)
- ``k8s:namespace/secret#key``       a key of a Kubernetes Secret (the garden or landscape API)

Every ``*_ref`` field of every definition and input, and every ``--*-ref`` flag, is a
:data:`SecretRef`: anything else is refused before a run starts. One exception, because a user name
is not a secret and the examples write it literally: ``username_ref`` (registry credentials) takes a
literal or a reference. A refused value may be the secret
itself (``password_ref: hunter2``), so no message ever quotes it: :func:`redacted` says its kind
and length at most. Models holding references set ``hide_input_in_errors`` so pydantic's own error
text (``input_value=...``) does not quote it either.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

PREFIXES = ("env:", "file:", "k8s:")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]{0,15}):")


def redacted(value: object) -> str:
    """What a message may say about a value that may be a secret: its kind and length, never its text."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    scheme = _SCHEME.match(value)
    kind = f"a {scheme.group(1)!r}-prefixed value" if scheme else "a plain value"
    return f"{kind} of {len(value)} characters"


def check_secret_ref(value: str) -> str:
    """Return ``value`` if it is a reference; else raise ValueError (which never quotes the value)."""
    if not isinstance(value, str) or not value.startswith(PREFIXES) or len(value.split(":", 1)[1]) == 0:
        raise ValueError(
            "must be a secret reference (env:NAME, file:/path or k8s:namespace/secret#key), "
            f"never the secret itself; got {redacted(value)}"
        )
    if value.startswith("env:") and not _ENV_NAME.match(value[4:]):
        raise ValueError(f"an env reference is env:NAME with a variable name; got {redacted(value)}")
    if value.startswith("k8s:"):
        body = value[4:]
        if "/" not in body or "#" not in body:
            raise ValueError("a k8s secret reference is k8s:namespace/secret#key")
    return value


SecretRef = Annotated[str, AfterValidator(check_secret_ref)]


def secret_ref_arg(value: str) -> str:
    """argparse ``type=`` for ``--*-ref`` flags: the error never echoes what was typed."""
    import argparse

    try:
        return check_secret_ref(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
