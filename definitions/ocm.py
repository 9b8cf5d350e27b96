"""OCM component descriptors (schema v2) and the component-transport step types.

The descriptor models follow OCM's `v2` schema field by field, but every model keeps fields it does
not know (``extra="allow"``) and :meth:`ComponentDescriptor.to_dict` only emits what was read or set.
That matters because a descriptor we do not sign ourselves must leave our hands exactly as it came:
dropping an unknown field (a newer OCM feature, a vendor extension) would change the bytes another
tool normalises and break its signature.

Everything here is pure data, importable inside the Temporal workflow sandbox.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from definitions import queues
from definitions.secrets import PREFIXES, SecretRef, is_pre_start
from definitions.steptypes import StepTable, register_all

# --- descriptor model (OCM component descriptor, schema v2) -----------------------------------------

SCHEMA_V2 = "v2"

ACCESS_LOCAL_BLOB = "localBlob"
ACCESS_OCI_ARTIFACT = "ociArtifact"
#: Older spelling OCM still reads.
ACCESS_OCI_REGISTRY = "ociRegistry"
ACCESS_NONE = ("none", "None")

NORM_GENERIC_BLOB = "genericBlobDigest/v1"
NORM_OCI_ARTIFACT = "ociArtifactDigest/v1"
NORM_EXCLUDED = "excludeFromSignature/none"  # spelled as OCM writes it in descriptors
HASH_SHA256 = "SHA-256"


class _Open(BaseModel):
    """Base of every descriptor model: unknown fields are kept, field order is kept."""

    model_config = ConfigDict(hide_input_in_errors=True, extra="allow", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return data


class Label(_Open):
    name: str
    value: Any = None
    version: str | None = None
    signing: bool | None = None


class DigestSpec(_Open):
    hashAlgorithm: str
    normalisationAlgorithm: str
    value: str


class SignatureSpec(_Open):
    algorithm: str
    value: str
    mediaType: str
    issuer: str | None = None


class Signature(_Open):
    name: str
    digest: DigestSpec
    signature: SignatureSpec


class Meta(_Open):
    schemaVersion: str = SCHEMA_V2


class Resource(_Open):
    name: str
    version: str = ""
    type: str = ""
    relation: str | None = None
    extraIdentity: dict[str, str] | None = None
    labels: list[Label] | None = None
    access: dict[str, Any] | None = None
    digest: DigestSpec | None = None

    def identity(self) -> dict[str, str]:
        ident = {"name": self.name}
        ident.update(self.extraIdentity or {})
        return ident

    @property
    def access_type(self) -> str:
        return str((self.access or {}).get("type", ""))


class Source(_Open):
    name: str
    version: str = ""
    type: str = ""
    extraIdentity: dict[str, str] | None = None
    labels: list[Label] | None = None
    access: dict[str, Any] | None = None


class ComponentReference(_Open):
    name: str
    componentName: str
    version: str
    extraIdentity: dict[str, str] | None = None
    labels: list[Label] | None = None
    digest: DigestSpec | None = None


class ComponentSpec(_Open):
    name: str
    version: str
    provider: str | dict[str, Any] = ""
    labels: list[Label] | None = None
    creationTime: str | None = None
    repositoryContexts: list[dict[str, Any]] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    componentReferences: list[ComponentReference] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)

    @field_validator("creationTime", mode="before")
    @classmethod
    def _time_as_text(cls, v: Any) -> Any:
        # YAML loaders may turn an unquoted timestamp into a datetime; OCM keeps the RFC 3339 text.
        if v is not None and not isinstance(v, str):
            iso = v.isoformat()
            return iso.replace("+00:00", "Z")
        return v


class ComponentDescriptor(_Open):
    meta: Meta = Field(default_factory=Meta)
    component: ComponentSpec
    signatures: list[Signature] | None = None

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def version(self) -> str:
        return self.component.version

    def signature(self, name: str) -> Signature | None:
        for sig in self.signatures or []:
            if sig.name == name:
                return sig
        return None


# --- transport step types ------------------------------------------------------------------------


class TransferMode(StrEnum):
    BY_REFERENCE = "by-reference"
    BY_VALUE = "by-value"


class ExistingPolicy(StrEnum):
    #: Skip a version the target already holds with identical content; fail if it differs.
    SKIP_IDENTICAL = "skip-identical"
    #: Replace whatever the target holds.
    OVERWRITE = "overwrite"
    #: Fail whenever the target already holds the version.
    FAIL = "fail"


class RepositorySpec(_Open):
    """An OCI repository base where component versions live (`<base>/component-descriptors/...`).

    ``url`` is ``http(s)://host:port[/prefix]``. Credentials are references (``env:``, ``file:``,
    ``k8s:``), resolved inside activities; ``ca_bundle`` is a path to a PEM file on the worker.
    """

    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    url: str
    #: The registry user name as it is (a user name is not a secret).
    username: str | None = None
    #: Or a reference to it (``env:``, ``file:``, ``k8s:``), like every ``*_ref`` field.
    username_ref: SecretRef | None = None
    password_ref: SecretRef | None = None
    token_ref: SecretRef | None = None
    ca_bundle: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_literal_username(cls, data: Any, info: ValidationInfo) -> Any:
        """Runs recorded before ``username`` existed carry ``username_ref: apeiro``; their histories
        must still decode and replay, so outside :data:`PRE_START` the literal moves into ``username``
        with a warning. Before start it is refused like any literal in a ``*_ref`` field."""
        if not isinstance(data, dict):
            return data
        value = data.get("username_ref")
        if not isinstance(value, str) or value.startswith(PREFIXES):
            return data
        if is_pre_start(info.context):
            return data  # refused by _reference_only, at the field
        if data.get("username") not in (None, value):
            raise ValueError("give either username or username_ref, not both")
        warnings.warn(
            "a literal user name in username_ref is deprecated: write username: NAME "
            "(username_ref takes only env:/file:/k8s: references)",
            FutureWarning,
            stacklevel=2,
        )
        moved = {k: v for k, v in data.items() if k != "username_ref"}
        moved["username"] = value
        return moved

    @field_validator("username_ref", mode="before")
    @classmethod
    def _reference_only(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith(PREFIXES):
            raise ValueError(
                "username_ref takes only a reference (env:NAME, file:/path or k8s:namespace/secret#key), "
                "never a literal; write a literal user name as username: NAME"
            )
        return value

    @model_validator(mode="after")
    def _one_username(self) -> RepositorySpec:
        if self.username is not None and self.username_ref is not None:
            raise ValueError("give either username (literal) or username_ref (reference), not both")
        return self


class ComponentVersionRef(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    name: str
    version: str


class VerifySpec(BaseModel):
    """A signature to verify: its name and the reference of the public key (or trusted root)."""

    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    name: str
    public_key_ref: SecretRef | None = None
    #: PEM bundle of trusted root certificates (reference) for signatures with a certificate chain.
    root_certs_ref: SecretRef | None = None
    issuer: str | None = None
    strict: bool = False


class SigningSpec(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    name: str
    private_key_ref: SecretRef
    algorithm: str = "RSASSA-PSS"
    normalisation: str = "jsonNormalisation/v4alpha1"
    #: Optional certificate chain (reference to a PEM file) written into a PEM signature.
    certificate_ref: SecretRef | None = None
    #: Verification at the target after upload (public key reference; defaults to the chain's key).
    public_key_ref: SecretRef | None = None


class TransportInput(BaseModel):
    """What `component.transport` copies where, and how."""

    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    source: RepositorySpec
    target: RepositorySpec
    components: list[ComponentVersionRef] = Field(min_length=1)
    mode: TransferMode = TransferMode.BY_VALUE
    recursive: bool = True
    verify: list[VerifySpec] = Field(default_factory=list)
    sign: SigningSpec | None = None
    existing: ExistingPolicy = ExistingPolicy.SKIP_IDENTICAL
    parallel_blobs: int = Field(default=4, ge=1, le=32)
    #: The largest PATCH of a blob upload, in bytes (64 KiB to 4 GiB). Chunks start at 16 MiB and grow
    #: with what the target holds (16, 16, 32, 64, 128, 256 MiB...) up to this bound, so a resume after
    #: a crash or a dropped connection sends at most one chunk again: at most this many bytes, and at
    #: most as many as the target already held (16 MiB early on). Fewer, larger chunks mean fewer
    #: waits for the registry's per-request fsync; a chunk is streamed, so its size costs no memory.
    chunk_size: int = Field(default=256 * 1024 * 1024, ge=64 * 1024, le=4 * 1024**3)
    #: A blob copy that stops heartbeating this long is retried (resuming its upload) elsewhere. It
    #: records its progress after every chunk and repeats it every third of this while a chunk is on
    #: the wire, so a slow link needs no more (a chunk is streamed: its size costs no memory).
    heartbeat_timeout_s: int = Field(default=15, ge=2)


class TransportedVersion(BaseModel):
    name: str
    version: str
    #: "copied", "skipped" (already identical at the target) or "overwritten".
    outcome: str
    manifest_digest: str = ""
    blobs_copied: int = 0
    bytes_sent: int = 0
    #: Bytes an attempt found already uploaded by an earlier (crashed) attempt and did not send again.
    bytes_resumed: int = 0
    signature_digest: str = ""
    warnings: list[str] = Field(default_factory=list)


class TransportResult(BaseModel):
    versions: list[TransportedVersion] = Field(default_factory=list)
    bytes_sent: int = 0
    blobs_copied: int = 0
    verified: bool = False


class VerifyInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    repository: RepositorySpec
    component: ComponentVersionRef
    verify: list[VerifySpec] = Field(min_length=1)
    check_blobs: bool = True


class VerifyResult(BaseModel):
    name: str
    version: str
    valid: bool
    digest: str = ""
    warnings: list[str] = Field(default_factory=list)


# --- internal models of the transport (workflow <-> activities) --------------------------------------


class BlobTask(BaseModel):
    """One blob to stream from ``src_repo`` to ``dst_repo`` (one activity each)."""

    src_repo: str
    dst_repo: str
    digest: str
    size: int = 0
    #: Registry URL of the source when it is not the transport's source registry (OCI artifacts elsewhere).
    src_registry: str | None = None
    #: Which resource or artifact it belongs to (for messages).
    label: str = ""
    #: Expected sha256 hex of the content per the resource digest (genericBlobDigest), if any.
    expected_sha256: str | None = None


class ManifestTask(BaseModel):
    """One manifest copied byte for byte; ``tag`` None means by digest only. Children come first."""

    src_registry: str
    src_repo: str
    dst_repo: str
    digest: str
    tag: str | None = None


class VersionPlan(BaseModel):
    name: str
    version: str
    #: "copy" (write all), "skip" (target identical and signed), "sign" (identical, signature missing)
    action: str
    overwrite: bool = False
    source_manifest_digest: str = ""
    blobs: list[BlobTask] = Field(default_factory=list)
    manifests: list[ManifestTask] = Field(default_factory=list)
    #: resource index -> new access spec (by value: digest-pinned OCI references in the target)
    access_rewrites: dict[int, dict[str, Any]] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


class TransportPlan(BaseModel):
    versions: list[VersionPlan] = Field(default_factory=list)


class BlobCopyInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    source: RepositorySpec
    target: RepositorySpec
    blob: BlobTask
    chunk_size: int = 256 * 1024 * 1024  # the largest chunk (TransportInput.chunk_size)


class BlobCopyResult(BaseModel):
    digest: str
    size: int = 0
    bytes_sent: int = 0
    skipped: bool = False
    mounted: bool = False
    resumed_from: int = 0
    attempt: int = 1


class ManifestCopyInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    source: RepositorySpec
    target: RepositorySpec
    manifests: list[ManifestTask]


class PreparedVersion(BaseModel):
    """A version's signed descriptor layer and config, uploaded to the target by ``ocm.prepare_version``
    while its blobs copy; ``ocm.finalise_version`` then only writes the manifest over them and verifies.
    OCI descriptors (``mediaType``, ``digest``, ``size``) only: no secret, no descriptor text."""

    descriptor_layer: dict[str, Any]
    config: dict[str, Any]
    #: The source manifest's local-blob layers, as the target manifest lists them.
    blob_layers: list[dict[str, Any]] = Field(default_factory=list)


class FinaliseInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    source: RepositorySpec
    target: RepositorySpec
    plan: VersionPlan
    sign: SigningSpec | None = None
    #: Set when ``ocm.prepare_version`` ran for this version (workflows started since the
    #: ``transport-prepare-while-copying`` patch); absent: finalise signs and uploads itself.
    prepared: PreparedVersion | None = None


OCM = StepTable(task_queue=queues.OCM)

# One row a step type: the table reads as a table.
# fmt: off
COMPONENT_TRANSPORT, COMPONENT_VERIFY = STEP_TYPES = register_all([
    OCM.workflow("component.transport", "ComponentTransportWorkflow", TransportInput, TransportResult,
                 "Copy OCM component versions between OCI registries (by value or by reference), "
                 "verify source signatures, sign and verify at the target.",
                 default_timeout=timedelta(hours=6),
                 non_retryable_errors=("SignatureInvalid", "DigestMismatch", "BadCredentials", "VersionConflict",
                                       "ComponentNotFound", "InvalidDescriptor")),
    OCM.activity("component.verify", VerifyInput, VerifyResult,
                 "Read a component version from a registry and verify its signatures and blob digests.",
                 target="ocm.verify_component", start_to_close=timedelta(minutes=30),
                 heartbeat_timeout=timedelta(seconds=10),  # heartbeats per MiB hashed
                 non_retryable_errors=("SignatureInvalid", "DigestMismatch", "BadCredentials", "ComponentNotFound")),
])
# fmt: on
