"""The local landscape `apeiro dev up` and `make demo` start: every part, in dependency order.

Each lifecycle that needs a peer adds its part here.
"""

from __future__ import annotations

from pathlib import Path

from landscape.landscape import Landscape
from landscape.part import Part
from landscape.process import free_port, port_open
from landscape.temporal import TemporalDevServer


def local_parts(*, ui_port: int | None = None) -> list[Part]:
    if ui_port is None:
        ui_port = 8233 if not port_open("127.0.0.1", 8233) else free_port()
    return [TemporalDevServer(ui_port=ui_port)]


def local_landscape(state_dir: Path | None = None, *, ui_port: int | None = None) -> Landscape:
    return Landscape(local_parts(ui_port=ui_port), state_dir=state_dir)
