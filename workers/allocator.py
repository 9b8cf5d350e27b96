"""glibc malloc settings for a worker that streams blobs (the ``ocm`` queue).

A blob copy allocates and frees several ~1 MiB buffers per MiB copied (the socket read, h11's and
httpx's buffers, each TLS record batch). With glibc's defaults a worker that never held a larger
buffer keeps its mmap threshold at about 1 MiB and its trim threshold at twice that, so these buffers
come from the top of the main heap and are handed back to the kernel (``brk``) as soon as they are
freed, then faulted in again, zeroed page by page, for the next one: about one ``brk`` per MiB and
170k minor page faults per GiB in the worker's event-loop thread (measured, docs/performance.md,
"Fourth pass"), against ~20 in a process whose thresholds an earlier large buffer had raised.
Fixing both thresholds keeps the freed buffers in the heap for reuse. The memory kept is bounded by
``trim`` (the heap top may hold that much free memory) and shows in RSS only once touched.

Not applied when the operator set a threshold through glibc's environment (``MALLOC_*_THRESHOLD_``,
``GLIBC_TUNABLES``), nor on a C library without ``mallopt`` (musl: no effect).
"""

from __future__ import annotations

import ctypes
import os

#: glibc's ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MiB = 1024 * 1024
#: Buffers up to this size come from the heap (reused), larger ones are mapped and unmapped per use.
MMAP_THRESHOLD = 4 * MiB
#: The heap keeps up to this much free memory at its top before it returns any to the kernel. It is
#: RSS the worker holds between copies (its RSS saw-toothed by ~15 MiB at 16 MiB); 8 MiB costs no more
#: page faults than 16 for one or eight parallel copies, 4 MiB costs ~25x (docs/performance.md, ninth pass).
TRIM_THRESHOLD = 8 * MiB
ENV_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

_applied: bool | None = None


def tune_for_streaming() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (once). True when they were set."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if any(os.environ.get(v) for v in ENV_VARS) or "threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # The mmap threshold first: setting either one turns glibc's dynamic adjustment of both off.
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
