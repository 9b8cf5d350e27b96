"""The blob copy's chunk schedule and read-ahead settings (``blobcopy`` uses them; see its docstring)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from activities.ocm.errors import OCMError

MiB = 1024 * 1024
#: Default largest PATCH (``TransportInput.chunk_size``). Nothing is held per chunk, so the size
#: costs no memory; it bounds how much a resume or a re-send after a dropped connection repeats.
DEFAULT_CHUNK = 256 * MiB
#: The first chunk of an upload. Chunks then grow with what the target holds (``chunk_end``).
FIRST_CHUNK = 16 * MiB
#: Bytes one copy reads ahead from the source (and hashes) while the target finishes a chunk, by
#: default: none (no gain measured on a busy machine, and it costs worker RSS; see ``READ_AHEAD_ENV``).
READ_AHEAD = 0
#: The worker's setting for the read-ahead per copy, in MiB (0-64): ``APEIRO_OCM_READ_AHEAD_MIB=16``.
READ_AHEAD_ENV = "APEIRO_OCM_READ_AHEAD_MIB"


def chunk_end(offset: int, size: int, chunk_size: int, first: int | None = FIRST_CHUNK) -> int:
    """Where the chunk that starts at ``offset`` ends: chunks grow with the bytes the target already
    holds, ``max(first, offset)`` (16, 16, 32, 64, 128, 256 MiB, ...), and never exceed
    ``chunk_size``. A killed or dropped chunk is what a resume sends again, so a resume repeats at
    most ``chunk_size`` bytes, and at most ``max(first, offset)``: early in a blob, little.
    ``first=None`` (or ``>= chunk_size``): every chunk is ``chunk_size``."""
    step = chunk_size if first is None else min(chunk_size, max(first, offset))
    return min(size, offset + max(1, step))


def read_ahead_setting(env: Mapping[str, str] = os.environ) -> int:
    """The read-ahead per copy in bytes, from ``APEIRO_OCM_READ_AHEAD_MIB`` (unset: ``READ_AHEAD``)."""
    raw = env.get(READ_AHEAD_ENV, "").strip()
    if not raw:
        return READ_AHEAD
    if not raw.isdigit() or int(raw) > 64:
        raise OCMError(f"{READ_AHEAD_ENV} must be a whole number of MiB from 0 to 64, not {raw!r}")
    return int(raw) * MiB


class Budget:
    """Bytes read ahead by all copies of this process together (their memory bound)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, n: int) -> bool:
        if self.held + n > self.limit:
            return False
        self.held += n
        return True

    def give(self, n: int) -> None:
        self.held = max(0, self.held - n)
