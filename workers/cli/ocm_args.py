"""Argument parsing shared by `apeiro ocm transfer` to a registry and to/from a CTF archive."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class UsageError(Exception):
    """Bad command-line usage: the command exits 2 with the message."""


def key_ref(text: str, what: str) -> tuple[str, str]:
    """``NAME=KEYREF`` (``--verify``, ``--sign``) as (name, reference)."""
    name, sep, ref = text.partition("=")
    if not sep or not name or not ref:
        raise UsageError(f"{what} must be NAME=KEYREF (e.g. acme=file:/keys/acme.pub), got {text!r}")
    return name, ref


def component_refs(values: Iterable[str]) -> list[Any]:
    """``NAME:VERSION`` arguments as ComponentVersionRefs."""
    from definitions.ocm import ComponentVersionRef

    comps = []
    for c in values:
        name, sep, version = c.rpartition(":")
        if not sep or not name or not version:
            raise UsageError(f"component must be NAME:VERSION, got {c!r}")
        comps.append(ComponentVersionRef(name=name, version=version))
    return comps


def verify_specs(values: Iterable[str]) -> list[Any]:
    """``--verify NAME=KEYREF`` arguments as VerifySpecs."""
    from definitions.ocm import VerifySpec

    return [VerifySpec(name=n, public_key_ref=r) for n, r in (key_ref(v, "--verify") for v in values)]
