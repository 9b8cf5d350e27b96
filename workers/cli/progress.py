"""Progress displays for long CLI commands (rich on a terminal, plain lines otherwise)."""

from __future__ import annotations

import sys
import time
from typing import Any

MIB = 1024 * 1024


class TransferDisplay:
    """`ocm transfer`: blobs done of total, and bytes and MiB/s per blob in flight."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.live: Any = None
        self.last_line = ""
        self.seen: dict[str, tuple[float, int]] = {}  # blob -> (time, offset) at the previous poll
        self.rates: dict[str, float] = {}
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(file=self.stream), auto_refresh=False, transient=True)
            self.live.start()

    def lines(self, progress: dict[str, Any] | None, offsets: dict[str, int]) -> list[str]:
        now = time.monotonic()
        out = []
        if progress:
            out.append(f"{progress.get('state')}: {progress.get('blobs_done')}/{progress.get('blobs_total')} blobs")
        for blob, offset in sorted(offsets.items()):
            before = self.seen.get(blob)
            if before is not None and now > before[0] and offset >= before[1]:
                self.rates[blob] = (offset - before[1]) / MIB / (now - before[0])
            self.seen[blob] = (now, offset)
            out.append(f"  {blob}: {offset / MIB:.1f} MiB sent, {self.rates.get(blob, 0.0):.1f} MiB/s")
        return out

    def update(self, progress: dict[str, Any] | None, offsets: dict[str, int]) -> None:
        text = "\n".join(self.lines(progress, offsets))
        if not text:
            return
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(text), refresh=True)
        elif text != self.last_line:
            print(text, file=self.stream, flush=True)
        self.last_line = text

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


class PhaseDisplay:
    """`baremetal discover`: the discovery workflow's phase and counts from its status query."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.last = ""
        self.status: Any = None
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console

            self.status = Console(file=self.stream).status("starting")
            self.status.start()

    @staticmethod
    def text(status: dict[str, Any]) -> str:
        state = status.get("state", "?")
        parts = [f"{key} {value}" for key, value in status.items() if key != "state"]
        return f"{state}" + (f" ({', '.join(parts)})" if parts else "")

    def update(self, status: dict[str, Any]) -> None:
        line = self.text(status)
        if line == self.last:
            return
        self.last = line
        if self.status is not None:
            self.status.update(line)
        else:
            print(f"  {line}", file=self.stream, flush=True)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
