"""Where named pipelines come from: YAML files in definition directories.

Workers resolve ``{"pipeline": "edge-site"}`` (typed in the Temporal UI) through this library, inside an
activity. Directories: ``APEIRO_DEFINITIONS`` (``os.pathsep``-separated), then the examples shipped with
the package.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from definitions.limits import MAX_DEFINITION_BYTES, size_text
from definitions.validate import DefinitionError, Problem, load_yaml, sub_pipelines

log = logging.getLogger(__name__)

#: A file this large is not a definition (the definition limit counts JSON, YAML is a little larger).
MAX_FILE_BYTES = 2 * MAX_DEFINITION_BYTES

EXAMPLES = Path(__file__).resolve().parent / "examples"

#: Parsed files by path: (inode, mtime_ns, ctime_ns, size) when read, the YAML (None when skipped), the skip reason.
#: Starting a pipeline checks its sub-pipeline calls against every file (``call_graph``); parsing the
#: examples alone took ~240 ms a start on a busy machine, so a file is parsed again only once it changed.
_PARSED: dict[Path, tuple[tuple[int, ...], Any, str | None]] = {}


def definition_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("APEIRO_DEFINITIONS", "").split(os.pathsep) if p]
    return [*dirs, EXAMPLES]


class _Skipped(Exception):
    """A file skipped before, unchanged since (its reason is the message)."""


class PipelineLibrary:
    def __init__(self, dirs: list[Path] | None = None) -> None:
        self.dirs = dirs if dirs is not None else definition_dirs()
        #: Files the last index() left out, with the reason (also logged as a warning).
        self.skipped: dict[Path, str] = {}

    def _read(self, path: Path) -> Any:
        """A file's YAML, or None after a warning naming the file: one bad file (binary, nested
        100k deep, huge) must not break `apeiro pipelines` or the workers' name lookup."""
        stamp: tuple[int, ...] | None = None
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
            cached = _PARSED.get(path)
            if cached is not None and cached[0] == stamp:
                if cached[2] is not None:
                    raise _Skipped(cached[2])
                return cached[1]  # shared: the library's readers only read it
            if st.st_size > MAX_FILE_BYTES:
                raise DefinitionError(
                    [Problem("", f"{st.st_size} bytes, over the limit of {size_text(MAX_FILE_BYTES)}")]
                )
            data = load_yaml(path.read_text(encoding="utf-8"), str(path))
            _PARSED[path] = (stamp, data, None)
            return data
        except (_Skipped, DefinitionError, OSError, UnicodeDecodeError, RecursionError, ValueError) as exc:
            reason = str(exc).splitlines()[-1].strip() if str(exc).strip() else type(exc).__name__
            if isinstance(exc, UnicodeDecodeError):
                reason = "not UTF-8 text (a binary file?)"
            if stamp is not None:
                _PARSED[path] = (stamp, None, reason)
            self.skipped[path] = reason
            log.warning("pipeline library: skipping %s: %s", path, reason)
            return None

    def _pipelines(self) -> dict[str, tuple[Path, Any]]:
        found: dict[str, tuple[Path, Any]] = {}
        self.skipped = {}
        for directory in self.dirs:
            if not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.yaml")):
                data = self._read(path)
                if isinstance(data, dict) and data.get("kind") == "Pipeline":
                    name = (data.get("metadata") or {}).get("name")
                    if isinstance(name, str) and name not in found:
                        found[name] = (path, data)
        return found

    def index(self) -> dict[str, Path]:
        """Pipeline name -> file, first directory wins. Unreadable files are skipped with a warning
        (``skipped`` says why; `apeiro validate FILE` gives every problem)."""
        return {name: path for name, (path, _) in self._pipelines().items()}

    def call_graph(self) -> dict[str, set[str]]:
        """Pipeline name -> the pipelines it runs through core.pipeline (literal names only).

        Pass it as ``known_pipelines`` to validate_definition to find cycles through any chain.
        """
        return {name: sub_pipelines(data) for name, (_, data) in self._pipelines().items()}

    def names(self) -> list[str]:
        return sorted(self.index())

    def load(self, name: str) -> dict[str, Any]:
        index = self.index()
        if name not in index:
            raise DefinitionError([Problem("pipeline", f"no pipeline named {name!r} in "
                                           f"{', '.join(str(d) for d in self.dirs)}; known: "
                                           f"{', '.join(sorted(index)) or 'none'}")])
        try:
            text = index[name].read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionError([Problem("", f"cannot read: {exc}")], str(index[name])) from None
        data: dict[str, Any] = load_yaml(text, str(index[name]))
        return data
