"""Progress displays for long CLI commands (rich on a terminal, plain lines otherwise)."""

from __future__ import annotations

import sys
import time
from typing import Any

from definitions.server import DiscoveryProgress

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


class DiscoveryDisplay:
    """`baremetal discover`: BMCs done of total and problems so far, from the workflow's `status` query.

    On a terminal a rich progress bar (redrawn in place, removed at the end); otherwise one plain line
    per change, so a log or CI shows the same numbers."""

    def __init__(self, stream: Any = None, console: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.last = ""
        self.progress: Any = None
        self.task: Any = None
        if console is not None or getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("BMCs"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=console or Console(file=self.stream),
                transient=console is None,
            )
            self.task = self.progress.add_task("discover", total=None, detail="starting")
            self.progress.start()

    @staticmethod
    def detail(p: DiscoveryProgress) -> str:
        parts = [p.state]
        if p.systems_total:
            parts.append(f"systems {p.systems_done}/{p.systems_total}")
        parts.append(f"{p.problems} problem" + ("" if p.problems == 1 else "s"))
        if p.state == "done":
            parts.append(f"{p.servers} server" + ("" if p.servers == 1 else "s"))
        return ", ".join(parts)

    @classmethod
    def text(cls, p: DiscoveryProgress) -> str:
        return f"BMCs {p.bmcs_done}/{p.bmcs_total}: {cls.detail(p)}"

    def update(self, p: DiscoveryProgress) -> None:
        line = self.text(p)
        if line == self.last:
            return
        self.last = line
        if self.progress is not None:
            self.progress.update(self.task, completed=p.bmcs_done, total=p.bmcs_total or None, detail=self.detail(p))
            self.progress.refresh()
        else:
            print(f"  {line}", file=self.stream, flush=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
