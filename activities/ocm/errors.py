"""Errors of the OCM layer. Each carries a ``kind`` that becomes the ApplicationError type: the class
name unless the class says otherwise (``class KeyError_(OCMError, kind="KeyInvalid")``)."""

from __future__ import annotations

from typing import Any


class OCMError(Exception):
    """Base class; ``kind`` names the failure for Temporal (non-retryable unless said otherwise)."""

    kind = "OCMError"
    retryable = False

    def __init_subclass__(cls, kind: str | None = None, retryable: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = kind or cls.__name__
        if retryable is not None:
            cls.retryable = retryable


class InvalidDescriptor(OCMError):
    """A component descriptor that does not parse or breaks the schema."""


class UnknownNormalisation(OCMError):
    """A signature names a normalisation algorithm this code does not implement."""


class SignatureInvalid(OCMError):
    """A signature that does not verify with the given key or certificate."""


class DigestMismatch(OCMError):
    """Content whose digest differs from the one the descriptor records."""


class KeyError_(OCMError, kind="KeyInvalid"):
    """A key or certificate could not be read or does not fit."""


class ComponentNotFound(OCMError):
    """The component version is not in the registry."""


class VersionConflict(OCMError):
    """The target already holds this version (and `existing` says not to overwrite it) or holds it
    with different content."""


class BadCredentials(OCMError):
    """The registry refused the credentials, or asks for authentication that is not configured."""


class RegistryError(OCMError, retryable=True):
    """A registry answered with an error a retry may fix (5xx, timeouts)."""
