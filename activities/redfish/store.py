"""Where full inventories and site snapshots live, outside workflow history.

A discovery of 1,000 systems yields several MB of inventory: more than one Temporal payload may carry
(2 MiB) and more than a history should. Activities write each full inventory here and workflows pass
only compact summaries; the image each server was last imaged with is recorded here too.
The default store is a directory (``APEIRO_INVENTORY_DIR``, default
``.apeiro/inventory``), which suits one worker host or a shared volume; an object store can implement
the same three methods.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from definitions.server import ImageRecord, SiteSnapshot, SystemInventory


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


class FileInventoryStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or Path(os.environ.get("APEIRO_INVENTORY_DIR", ".apeiro/inventory"))).resolve()

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)

    def put_inventory(self, site: str, inv: SystemInventory) -> Path:
        path = self.root / _safe(site) / "servers" / f"{_safe(inv.identity)}.json"
        self._write(path, inv.model_dump_json(indent=1))
        return path

    def get_inventory(self, site: str, identity: str) -> SystemInventory | None:
        path = self.root / _safe(site) / "servers" / f"{_safe(identity)}.json"
        if not path.is_file():
            return None
        return SystemInventory.model_validate_json(path.read_text())

    def find_inventory(self, identity: str) -> SystemInventory | None:
        if not self.root.is_dir():
            return None
        for site in sorted(self.root.iterdir()):
            inv = self.get_inventory(site.name, identity)
            if inv is not None:
                return inv
        return None

    def put_image(self, site: str, identity: str, record: ImageRecord) -> None:
        """The Garden Linux image a server was (re-)imaged with (what ``server.image`` compares)."""
        self._write(self.root / _safe(site) / "images" / f"{_safe(identity)}.json", record.model_dump_json())

    def get_image(self, site: str, identity: str) -> ImageRecord | None:
        path = self.root / _safe(site) / "images" / f"{_safe(identity)}.json"
        return ImageRecord.model_validate_json(path.read_text()) if path.is_file() else None

    def load_snapshot(self, site: str) -> SiteSnapshot:
        path = self.root / _safe(site) / "snapshot.json"
        if not path.is_file():
            return SiteSnapshot(site=site)
        return SiteSnapshot.model_validate(json.loads(path.read_text()))

    def save_snapshot(self, snap: SiteSnapshot) -> None:
        self._write(self.root / _safe(snap.site) / "snapshot.json", snap.model_dump_json())
