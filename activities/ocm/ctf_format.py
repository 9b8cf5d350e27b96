"""The Common Transport Format (CTF) on disk: reading and writing, no registries, no Temporal.

The layout follows OCM's format specification (``ctf/formatspec.md`` in open-component-model/ocm)
and what its CLI writes:

- ``artifact-index.json``: ``{"schemaVersion": 1, "artifacts": [{"repository", "tag", "digest",
  "mediaType"}]}``: the manifests (image manifests or indexes) the archive holds, per repository;
  component versions are the OCI mapping's ``component-descriptors/<name>`` repositories.
- ``blobs/``: every manifest and every blob they reference, as a flat list of files named by digest
  with the algorithm separator replaced by a dot (``sha256.<hex>``).
- The same tree as a directory, or inside a tar file (the index the first member).

Writing is crash-safe and resumable: blobs land in a staging directory as ``<name>.part`` and are
renamed once their digest checks; the index is written last, so a directory without an index is an
unfinished export, never a valid archive. A tar is packed from the staging directory into
``<archive>.part`` and renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from activities.ocm.errors import DigestMismatch, OCMError

INDEX_FILE = "artifact-index.json"
BLOBS_DIR = "blobs"
SCHEMA_VERSION = 1
_PIECE = 1024 * 1024


class ArchiveInvalid(OCMError):
    """The archive is not a CTF archive we can read (missing index, unknown version, truncated)."""

    kind = "ArchiveInvalid"


def blob_name(digest: str) -> str:
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise ArchiveInvalid(f"unsupported blob digest {digest!r} (expected sha256:<64 hex>)")
    return f"{algo}.{hexpart}"


def encode_index(artifacts: list[dict[str, Any]]) -> bytes:
    return json.dumps({"schemaVersion": SCHEMA_VERSION, "artifacts": artifacts}, separators=(",", ":")).encode()


def decode_index(data: bytes, where: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ArchiveInvalid(f"{where}: {INDEX_FILE} is not JSON ({exc}); the archive is damaged") from None
    if not isinstance(doc, dict):
        raise ArchiveInvalid(f"{where}: {INDEX_FILE} is not a JSON object")
    version = doc.get("schemaVersion")
    if version != SCHEMA_VERSION:
        raise ArchiveInvalid(
            f"{where}: artifact index schemaVersion {version!r} is not supported (this reads version "
            f"{SCHEMA_VERSION}); export the archive with an OCM CLI that writes CTF version {SCHEMA_VERSION}"
        )
    arts = doc.get("artifacts") or []
    for a in arts:
        if not isinstance(a, dict) or not a.get("repository") or not a.get("digest"):
            raise ArchiveInvalid(f"{where}: index entry {a!r} lacks repository or digest")
    return list(arts)


# --- writing ------------------------------------------------------------------------------------------


def staging_dir(archive: str, tar: bool) -> Path:
    """Where an export writes: the directory itself, or ``<archive>.staging`` for a tar."""
    return Path(archive + ".staging") if tar else Path(archive)


def blob_path(staging: Path, digest: str) -> Path:
    return staging / BLOBS_DIR / blob_name(digest)


def have_blob(staging: Path, digest: str, size: int | None = None) -> bool:
    p = blob_path(staging, digest)
    return p.is_file() and (size is None or size <= 0 or p.stat().st_size == size)


def write_small_blob(staging: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    p = blob_path(staging, digest)
    if not p.is_file():
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    return digest


@dataclass
class PartialBlob:
    """A blob being written: bytes already on disk (resume offset) and the running hash."""

    path: Path
    digest: str
    offset: int
    hasher: Any

    @classmethod
    def open(cls, staging: Path, digest: str) -> PartialBlob:
        final = blob_path(staging, digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        h = hashlib.sha256()
        offset = 0
        if part.exists():
            with part.open("rb") as f:
                while chunk := f.read(_PIECE):
                    h.update(chunk)
                    offset += len(chunk)
        return cls(part, digest, offset, h)

    def commit(self) -> None:
        actual = "sha256:" + self.hasher.hexdigest()
        if actual != self.digest:
            self.path.unlink(missing_ok=True)
            raise DigestMismatch(f"blob {self.digest} arrived with content digest {actual}; the source is corrupt")
        os.replace(self.path, self.path.with_name(self.path.name.removesuffix(".part")))


def seal(staging: Path, archive: str, tar: bool, artifacts: list[dict[str, Any]]) -> int:
    """Write the index (last), and for a tar pack the tree (index first). Returns the archive size."""
    data = encode_index(artifacts)
    for a in artifacts:  # never seal an archive that would not read back
        if not have_blob(staging, a["digest"]):
            raise ArchiveInvalid(f"cannot seal {archive}: manifest {a['digest']} of {a['repository']} is missing")
    if not tar:
        tmp = staging / (INDEX_FILE + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, staging / INDEX_FILE)
        return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    part = Path(archive + ".part")
    with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tf:
        _add_bytes(tf, INDEX_FILE, data)
        info = tarfile.TarInfo(BLOBS_DIR)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
        tf.addfile(info)
        for p in sorted((staging / BLOBS_DIR).iterdir()):
            if p.name.endswith(".part"):
                continue
            info = tarfile.TarInfo(f"{BLOBS_DIR}/{p.name}")
            info.size, info.mode, info.mtime = p.stat().st_size, 0o644, 0
            with p.open("rb") as f:
                tf.addfile(info, f)
    os.replace(part, archive)
    shutil.rmtree(staging, ignore_errors=True)
    return Path(archive).stat().st_size


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tf.addfile(info, io.BytesIO(data))


# --- reading ------------------------------------------------------------------------------------------


class Archive:
    """Read access to a CTF directory or tar file; blobs are streamed, never loaded whole."""

    def __init__(self, path: str) -> None:
        self.path = path
        p = Path(path)
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if p.is_dir():
            idx = p / INDEX_FILE
            if not idx.is_file():
                hint = " (an export that did not finish: run it again)" if (p / BLOBS_DIR).is_dir() else ""
                raise ArchiveInvalid(f"{path} is not a CTF archive: it has no {INDEX_FILE}{hint}")
            raw = idx.read_bytes()
        elif p.is_file():
            try:
                self._tar = tarfile.open(p, "r:*")
                self._members = {m.name.lstrip("./"): m for m in self._tar.getmembers() if m.isfile()}
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise ArchiveInvalid(f"{path} is not a readable tar archive ({exc}); it may be truncated") from None
            if INDEX_FILE not in self._members:
                raise ArchiveInvalid(f"{path} is not a CTF archive: the tar holds no {INDEX_FILE}")
            raw = self._read_member(INDEX_FILE)
        else:
            raise ArchiveInvalid(f"archive {path} does not exist on this worker")
        self.artifacts = decode_index(raw, path)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_member(self, name: str) -> bytes:
        assert self._tar is not None
        try:
            f = self._tar.extractfile(self._members[name])
            data = f.read() if f is not None else b""
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveInvalid(f"{self.path}: cannot read {name} ({exc}); the archive is truncated") from None
        if len(data) != self._members[name].size:
            raise ArchiveInvalid(f"{self.path}: {name} is cut short; the archive is truncated")
        return data

    def blob_size(self, digest: str) -> int | None:
        name = f"{BLOBS_DIR}/{blob_name(digest)}"
        if self._tar is not None:
            m = self._members.get(name)
            return m.size if m else None
        p = Path(self.path) / name
        return p.stat().st_size if p.is_file() else None

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[IO[bytes]]:
        name = f"{BLOBS_DIR}/{blob_name(digest)}"
        if self._tar is not None:
            m = self._members.get(name)
            f = self._tar.extractfile(m) if m else None
            if f is None:
                raise ArchiveInvalid(f"{self.path}: blob {digest} is missing from the archive")
            yield f
            return
        try:
            fh = (Path(self.path) / name).open("rb")
        except FileNotFoundError:
            raise ArchiveInvalid(f"{self.path}: blob {digest} is missing from the archive") from None
        with fh:
            yield fh

    def read_blob(self, digest: str, max_size: int = 16 * 1024 * 1024) -> bytes:
        size = self.blob_size(digest)
        if size is None:
            raise ArchiveInvalid(f"{self.path}: blob {digest} is missing from the archive")
        if size > max_size:
            raise ArchiveInvalid(f"{self.path}: blob {digest} is {size} bytes, too large to read whole")
        with self.open_blob(digest) as f:
            data = f.read()
        check_digest(data, digest, self.path)
        return data

    def verify_blob(self, digest: str, size: int | None = None) -> int:
        """Hash one blob end to end; raise when it is missing, short or tampered. Returns its size."""
        have = self.blob_size(digest)
        if have is None:
            raise ArchiveInvalid(f"{self.path}: blob {digest} is missing from the archive (truncated or incomplete)")
        if size is not None and size >= 0 and have != size:
            raise ArchiveInvalid(f"{self.path}: blob {digest} has {have} bytes, its manifest says {size}")
        h = hashlib.sha256()
        n = 0
        try:
            with self.open_blob(digest) as f:
                while chunk := f.read(_PIECE):
                    h.update(chunk)
                    n += len(chunk)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveInvalid(f"{self.path}: cannot read blob {digest} ({exc}); the archive is truncated") from None
        if n != have:
            raise ArchiveInvalid(f"{self.path}: blob {digest} is cut short ({n} of {have} bytes); truncated")
        if "sha256:" + h.hexdigest() != digest:
            raise DigestMismatch(
                f"{self.path}: blob {digest} has content digest sha256:{h.hexdigest()}; the archive was tampered with"
            )
        return n


def check_digest(data: bytes, digest: str, where: str) -> None:
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise DigestMismatch(f"{where}: blob {digest} has content digest {actual}; the archive was tampered with")
