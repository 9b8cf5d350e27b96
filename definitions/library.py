"""Where named pipelines come from: YAML files in definition directories.

Workers resolve ``{"pipeline": "edge-site"}`` (typed in the Temporal UI) through this library, inside an
activity. Directories: ``APEIRO_DEFINITIONS`` (``os.pathsep``-separated), then the examples shipped with
the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from definitions.validate import DefinitionError, Problem, load_yaml
from definitions.yamlfiles import YamlProblem, load_yaml_file

EXAMPLES = Path(__file__).resolve().parent / "examples"


def definition_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("APEIRO_DEFINITIONS", "").split(os.pathsep) if p]
    return [*dirs, EXAMPLES]


class PipelineLibrary:
    def __init__(self, dirs: list[Path] | None = None) -> None:
        self.dirs = dirs if dirs is not None else definition_dirs()

    def index(self) -> dict[str, Path]:
        """Pipeline name -> file, first directory wins. Unparsable files are left out (validate says why)."""
        found: dict[str, Path] = {}
        for directory in self.dirs:
            if not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.yaml")):
                try:
                    data = load_yaml_file(path)
                except (YamlProblem, OSError):
                    continue
                if isinstance(data, dict) and data.get("kind") == "Pipeline":
                    name = (data.get("metadata") or {}).get("name")
                    if isinstance(name, str) and name not in found:
                        found[name] = path
        return found

    def names(self) -> list[str]:
        return sorted(self.index())

    def load(self, name: str) -> dict[str, Any]:
        index = self.index()
        if name not in index:
            raise DefinitionError([Problem("pipeline", f"no pipeline named {name!r} in "
                                           f"{', '.join(str(d) for d in self.dirs)}; known: "
                                           f"{', '.join(sorted(index)) or 'none'}")])
        data: dict[str, Any] = load_yaml(index[name].read_text(), str(index[name]))
        return data
