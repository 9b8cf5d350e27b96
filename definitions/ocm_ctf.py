"""Models of the air-gapped transport: OCM component versions to and from a Common Transport Format
(CTF) archive, the file layout the OCM CLI reads and writes (``artifact-index.json`` + ``blobs/``).

The archive is a path on the ``ocm`` worker's file system (a directory, or a ``.tar`` file): the
operator carries it across the air gap. Export and import are workflows (``CtfExportWorkflow``,
``CtfImportWorkflow``) so both resume blob by blob after a crash, like registry transfers.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from definitions.ocm import ComponentVersionRef, ExistingPolicy, RepositorySpec, TransferMode, VerifySpec


class CtfFormat(StrEnum):
    DIRECTORY = "directory"
    TAR = "tar"


class CtfExportInput(BaseModel):
    """Registry -> archive. Signatures named in ``verify`` are checked before anything is written."""

    model_config = ConfigDict(hide_input_in_errors=True)

    source: RepositorySpec
    archive: str = Field(description="path on the ocm worker: a directory, or a .tar file")
    format: CtfFormat = CtfFormat.DIRECTORY
    components: list[ComponentVersionRef] = Field(min_length=1)
    mode: TransferMode = TransferMode.BY_VALUE
    recursive: bool = True
    verify: list[VerifySpec] = Field(default_factory=list)
    parallel_blobs: int = Field(default=4, ge=1, le=32)
    heartbeat_timeout_s: int = Field(default=60, ge=2)


class CtfImportInput(BaseModel):
    """Archive -> registry. The whole archive is checked (index version, every blob's digest, the
    signatures in ``verify``) before the first byte is written to the target."""

    model_config = ConfigDict(hide_input_in_errors=True)

    archive: str
    target: RepositorySpec
    #: Empty: every component version in the archive.
    components: list[ComponentVersionRef] = Field(default_factory=list)
    verify: list[VerifySpec] = Field(default_factory=list)
    existing: ExistingPolicy = ExistingPolicy.SKIP_IDENTICAL
    parallel_blobs: int = Field(default=4, ge=1, le=32)
    chunk_size: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    heartbeat_timeout_s: int = Field(default=60, ge=2)


class CtfArtifact(BaseModel):
    """One entry of ``artifact-index.json`` (repository relative to the repository base)."""

    repository: str
    tag: str | None = None
    digest: str
    media_type: str = ""


class CtfBlob(BaseModel):
    """A blob to move between a registry repository and the archive's ``blobs/``."""

    repo: str
    digest: str
    size: int = 0
    #: Registry URL when the blob is not on the source registry (export of OCI artifacts elsewhere).
    registry: str | None = None
    label: str = ""


class CtfExportPlan(BaseModel):
    staging: str
    index: list[CtfArtifact] = Field(default_factory=list)
    blobs: list[CtfBlob] = Field(default_factory=list)
    versions: list[ComponentVersionRef] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    #: The archive already exists with exactly this content: nothing to do.
    complete: bool = False


class CtfExportBlobInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    source: RepositorySpec
    staging: str
    blob: CtfBlob


class CtfSealInput(BaseModel):
    archive: str
    format: CtfFormat
    plan: CtfExportPlan


class CtfExportResult(BaseModel):
    archive: str
    format: CtfFormat
    versions: list[ComponentVersionRef] = Field(default_factory=list)
    artifacts: int = 0
    blobs: int = 0
    bytes_written: int = 0
    warnings: list[str] = Field(default_factory=list)


class CtfImportVersion(BaseModel):
    name: str
    version: str
    #: "copy", or "skip" (the target already holds identical content)
    action: str = "copy"
    #: Named in the input (signatures required) rather than reached through a reference.
    top: bool = True
    manifest_digest: str = ""
    #: resource index -> access rewritten to the target (OCI artifacts carried in the archive)
    access_rewrites: dict[int, dict[str, str]] = Field(default_factory=dict)


class CtfImportPlan(BaseModel):
    #: Blobs to upload: ``repo`` is the repository at the target.
    blobs: list[CtfBlob] = Field(default_factory=list)
    #: OCI artifact manifests (children first) to put byte for byte at the target.
    artifacts: list[CtfArtifact] = Field(default_factory=list)
    #: Component versions, referenced ones first.
    versions: list[CtfImportVersion] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class CtfImportBlobInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    archive: str
    target: RepositorySpec
    blob: CtfBlob
    chunk_size: int = 8 * 1024 * 1024


class CtfFinishInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    archive: str
    target: RepositorySpec
    plan: CtfImportPlan
    verify: list[VerifySpec] = Field(default_factory=list)


class CtfImportedVersion(BaseModel):
    name: str
    version: str
    outcome: str
    manifest_digest: str = ""
    #: Normalised descriptor digest after import (equal to the archive's: signatures stay valid).
    descriptor_digest: str = ""
    signatures_verified: list[str] = Field(default_factory=list)


class CtfImportResult(BaseModel):
    versions: list[CtfImportedVersion] = Field(default_factory=list)
    blobs_uploaded: int = 0
    bytes_sent: int = 0
    bytes_resumed: int = 0
    warnings: list[str] = Field(default_factory=list)
