"""Pipeline definitions from files or the library, and `--input` pairs typed by them (`apeiro validate`,
`run`, `graph`). Apart from workers/cli/common.py so that commands without definitions (`apeiro
worker`) do not import the pipeline library and its CEL parser."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from definitions.library import PipelineLibrary
from definitions.validate import DefinitionError, Problem, coerce_cli_value, load_yaml, parse_pipeline


def read_definition(target: str) -> tuple[dict[str, Any], str]:
    """A definition from a file path, or from the library by pipeline name."""
    path = Path(target)
    if path.is_file():
        data = load_yaml(read_text_file(path), str(path))
        if not isinstance(data, dict):
            raise DefinitionError([Problem("", "a definition must be a YAML mapping")], str(path))
        return data, str(path)
    if path.suffix in (".yaml", ".yml") or os.sep in target:
        raise DefinitionError([Problem("", f"no such file: {target}")], target)
    return PipelineLibrary().load(target), f"pipeline {target}"


def read_text_file(path: Path, what: str = "definition") -> str:
    """A UTF-8 text file, or a DefinitionError naming it (binary, unreadable, a directory)."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            [Problem("", f"not UTF-8 text (byte {exc.start}); a {what} file is YAML or JSON text")], str(path)
        ) from None
    except OSError as exc:
        raise DefinitionError([Problem("", f"cannot read: {exc.strerror}")], str(path)) from None


def parse_inputs(pairs: Sequence[str], data: dict[str, Any]) -> dict[str, Any]:
    """`--input k=v` pairs, typed by the definition's declared inputs where it parses."""
    declared = {}
    try:
        declared = parse_pipeline(data).spec.inputs
    except DefinitionError:
        pass
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise DefinitionError([Problem(f"--input {pair}", "expected NAME=VALUE")])
        spec = declared.get(key)
        out[key] = coerce_cli_value(spec, raw) if spec is not None else raw
    return out
