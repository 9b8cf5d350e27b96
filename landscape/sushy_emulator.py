"""Run sushy-emulator with its sqlite connections closed after each use.

sushy-tools' ``PersistentDict.connection`` opens a sqlite connection per access inside
``with sqlite3.connect(...)``, which commits but does not close it: the fake driver's state files stay
open until the garbage collector finds the connection, one or two file descriptors per request. Under a
fleet's worth of requests (200 BMCs, tens of thousands of reads) the emulator reached its open-file
limit and answered 500 ("unable to open database file", "Too many open files" reading the auth file)
until retries ran out, so discovery missed BMCs. This launcher closes each connection when its block
ends (same commit/rollback semantics), raises the soft open-file limit to the hard one, and runs
the emulator's own ``main``:

    python -m landscape.sushy_emulator --config FILE
"""

from __future__ import annotations

import contextlib
import resource
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any

from sushy_tools.emulator import main as emulator_main
from sushy_tools.emulator import memoize


@contextlib.contextmanager
def closing_connection(self: Any) -> Iterator[sqlite3.Cursor]:
    """``PersistentDict.connection``, closing the connection at the end (upstream leaves it open)."""
    if not self._dbpath:
        raise TypeError("Dict is not yet persistent")
    connection = sqlite3.connect(self._dbpath)
    try:
        with connection:  # commit on success, roll back on an exception
            connection.execute("pragma journal_mode=wal")
            yield connection.cursor()
    finally:
        connection.close()


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def main() -> int:
    memoize.PersistentDict.connection = closing_connection
    raise_open_files_limit()
    return int(emulator_main.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
