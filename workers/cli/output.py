"""One output flag for every command that prints data: `-o text|json|yaml` (kubectl's habit).

The flag exists on the root parser (`apeiro -o json status ID`) and on every data-printing
subcommand (`apeiro status ID -o json`); the subcommand's copy defaults to SUPPRESS so it never
overwrites a value given at the root. The old `--json` and `--format` flags stay as hidden,
deprecated aliases so scripts written against them keep working (with a warning on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from pydantic import BaseModel

FORMATS = ("text", "json", "yaml")
OUTPUT_HELP = "output format: text (tables for people), json or yaml (for scripts); default text"


class _DeprecatedAlias(argparse.Action):
    """`--json` or `--format X`: sets `output`, warns once that the flag is deprecated."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        const: str | None = None,
        mapping: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.mapping = mapping
        super().__init__(option_strings, dest, nargs=None if mapping else 0, const=const, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if self.mapping is not None:
            if values not in self.mapping:
                parser.error(
                    f"argument {option_string}: invalid choice {values!r} (choose from {', '.join(self.mapping)})"
                )
            value = self.mapping[values]
            hint = f"-o {value}"
        else:
            value = str(self.const)
            hint = f"-o {value}"
        print(f"warning: {option_string} is deprecated; use {hint}", file=sys.stderr)
        setattr(namespace, self.dest, value)


def add_root_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=FORMATS, default="text", help=OUTPUT_HELP)


def add_output_option(
    parser: argparse.ArgumentParser, *, legacy_json: bool = False, legacy_format: dict[str, str] | None = None
) -> None:
    """Give a data-printing subcommand `-o/--output` (and its old flag as a hidden alias)."""
    parser.add_argument("-o", "--output", choices=FORMATS, default=argparse.SUPPRESS, help=OUTPUT_HELP)
    if legacy_json:
        parser.add_argument(
            "--json",
            dest="output",
            action=_DeprecatedAlias,
            const="json",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    if legacy_format is not None:
        parser.add_argument(
            "--format",
            dest="output",
            action=_DeprecatedAlias,
            mapping=legacy_format,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )


def output_format(args: argparse.Namespace) -> str:
    return str(getattr(args, "output", "text") or "text")


def plain(data: Any) -> Any:
    """JSON-ready data from pydantic models (also inside lists and dicts)."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", by_alias=False)
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [plain(v) for v in data]
    return data


def render(fmt: str, data: Any, text: Callable[[], str]) -> str:
    """The text of `data` in `fmt`; `text` builds the human form only when asked for."""
    if fmt == "json":
        return json.dumps(plain(data), indent=2, default=str)
    if fmt == "yaml":
        return yaml.safe_dump(json.loads(json.dumps(plain(data), default=str)), sort_keys=False).rstrip("\n")
    return text()


def emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    print(render(output_format(args), data, text))
