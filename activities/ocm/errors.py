"""Errors of the OCM layer. Each carries a ``kind`` that becomes the ApplicationError type."""

from __future__ import annotations


class OCMError(Exception):
    """Base class; ``kind`` names the failure for Temporal (non-retryable unless said otherwise)."""

    kind = "OCMError"
    retryable = False


class InvalidDescriptor(OCMError):
    kind = "InvalidDescriptor"


class UnknownNormalisation(OCMError):
    kind = "UnknownNormalisation"


class SignatureInvalid(OCMError):
    kind = "SignatureInvalid"


class DigestMismatch(OCMError):
    kind = "DigestMismatch"


class KeyError_(OCMError):
    """A key or certificate could not be read or does not fit."""

    kind = "KeyInvalid"


class ComponentNotFound(OCMError):
    kind = "ComponentNotFound"


class VersionConflict(OCMError):
    kind = "VersionConflict"


class BadCredentials(OCMError):
    kind = "BadCredentials"


class RegistryError(OCMError):
    """A registry answered with an error a retry may fix (5xx, timeouts)."""

    kind = "RegistryError"
    retryable = True
