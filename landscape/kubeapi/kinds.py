"""The registry of kinds the API server serves, each with its own admission hooks.

A lifecycle registers its kinds (Shoot, CloudProfile, IronCore's Server, Konfidence's Stage...) with
a :class:`Kind` carrying mutating (``admit``) and validating (``validate``) hooks, which the server
calls on create, update (spec or status) and delete, like admission plugins of a real API server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from landscape.kubeapi.store import Store


@dataclass
class AdmissionRequest:
    """What a hook sees. ``new`` may be mutated by ``admit`` hooks; ``old`` is None on create."""

    operation: str  # CREATE, UPDATE, DELETE
    kind: Kind
    new: dict[str, Any] | None
    old: dict[str, Any] | None
    store: Store
    subresource: str = ""
    dry_run: bool = False

    @property
    def name(self) -> str:
        obj = self.new or self.old or {}
        return str(obj.get("metadata", {}).get("name", ""))


Hook = Callable[[AdmissionRequest], None]


@dataclass
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    status_subresource: bool = True
    #: Strategic merge patch support: dotted list paths (no indices) -> merge key. ``None`` means the
    #: kind is CRD-like and strategic merge patches are refused with 415, as kube-apiserver does.
    merge_keys: dict[str, str] | None = None
    admit: list[Hook] = field(default_factory=list)
    validate: list[Hook] = field(default_factory=list)
    #: Run on every body a client writes, before anything else looks at it (what decoding does in
    #: kube-apiserver: a custom resource's unknown fields are pruned and defaults applied here).
    decode: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    #: The structural ``openAPIV3Schema`` of a kind served from a CustomResourceDefinition (else None).
    schema: dict[str, Any] | None = None
    #: ``additionalPrinterColumns`` of the served version (Table output).
    columns: list[dict[str, Any]] = field(default_factory=list)
    categories: tuple[str, ...] = ()
    #: The CustomResourceDefinition that serves this kind ("" for built-in kinds).
    crd: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def resource(self) -> str:
        """`plural.group` as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)


class KindRegistry:
    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str, str], Kind] = {}

    def register(self, kind: Kind) -> Kind:
        existing = self._kinds.get(kind.key())
        if existing is not None:
            # Registering again adds hooks (a controller module extending a built-in kind).
            existing.admit.extend(h for h in kind.admit if h not in existing.admit)
            existing.validate.extend(h for h in kind.validate if h not in existing.validate)
            return existing
        if not kind.singular:
            kind.singular = kind.kind.lower()
        self._kinds[kind.key()] = kind
        return kind

    def unregister(self, key: tuple[str, str, str]) -> Kind | None:
        return self._kinds.pop(key, None)

    def get(self, group: str, version: str, plural: str) -> Kind | None:
        return self._kinds.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> Kind | None:
        for k in self._kinds.values():
            if k.api_version == api_version and k.kind == kind:
                return k
        return None

    def all(self) -> list[Kind]:
        return list(self._kinds.values())

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k in self._kinds.values():
            if k.group:
                versions = out.setdefault(k.group, [])
                if k.version not in versions:
                    versions.append(k.version)
        return out


def core_kinds() -> list[Kind]:
    """The core/v1 kinds every landscape needs."""
    return [
        Kind("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",), merge_keys={}),
        Kind("", "v1", "Secret", "secrets", status_subresource=False, merge_keys={}),
        Kind("", "v1", "ConfigMap", "configmaps", status_subresource=False, merge_keys={}, short_names=("cm",)),
    ]


def default_registry() -> KindRegistry:
    reg = KindRegistry()
    for k in core_kinds():
        reg.register(k)
    return reg
