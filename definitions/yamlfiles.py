"""The one way the product reads YAML a person wrote: pipeline definitions, promotions, sites,
CloudProfiles, gateway and schedule configuration, kubeconfigs.

``yaml.safe_load`` is safe from code execution but not from the other classic mistakes and attacks:
a duplicate key silently overwrites the first (``rings:`` twice loses a ring), and a few hundred bytes
of nested aliases ("billion laughs") expand to gigabytes once the data is serialised as workflow
input or walked by a validator. This loader rejects duplicate keys, caps the size after alias
expansion, and turns deep nesting into an error instead of a ``RecursionError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: Largest document, counted in values after YAML aliases are expanded. Aliases share objects, so a
#: few hundred bytes of nested aliases expand to gigabytes once serialised as workflow input; real
#: definitions have a few thousand values.
MAX_EXPANDED_VALUES = 200_000


class YamlProblem(ValueError):
    """A YAML document that cannot be used; ``where`` is ``line L, column C`` (or ``YAML``)."""

    def __init__(self, where: str, problem: str, source: str = "") -> None:
        self.where = where
        self.problem = problem
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(f"{head}{where}: {problem}")


#: libyaml's parser when PyYAML was built with it (the wheels on PyPI are): 5-10x faster than the pure
#: Python one, which matters where a worker parses every component descriptor it copies or verifies.
#: The constructor and resolver (what becomes of the parsed nodes) are PyYAML's own either way.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader that rejects duplicate keys (a silent overwrite is a classic YAML mistake)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _StrictTextTimestampsLoader(_StrictLoader):
    """The same, keeping timestamps as the text they were written as (OCM hashes the RFC 3339 string)."""


_StrictTextTimestampsLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in _StrictLoader.yaml_implicit_resolvers.items()
}


def _expanded_size_exceeds(data: Any, limit: int) -> bool:
    """Count values as serialisation will see them (shared objects once per use), stopping at ``limit``."""
    count = 0
    stack = [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


#: Deepest flow nesting (``[[[...]]]``, ``{{...}}``) read. PyYAML needs ~15 s to give up on 2,000
#: levels (a RecursionError unwinding thousands of frames), so the text is scanned before parsing.
MAX_FLOW_DEPTH = 200


def _flow_depth_exceeds(text: str | bytes, limit: int) -> bool:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth = max(0, depth - 1)
    return False


def parse_yaml(text: str | bytes, source: str = "", *, timestamps_as_text: bool = False) -> Any:
    """The document in ``text``; :class:`YamlProblem` for invalid YAML, duplicate keys, too deep nesting
    or more than :data:`MAX_EXPANDED_VALUES` values once aliases are expanded."""
    loader = _StrictTextTimestampsLoader if timestamps_as_text else _StrictLoader
    if _flow_depth_exceeds(text, MAX_FLOW_DEPTH):
        raise YamlProblem("YAML", f"nested too deeply (more than {MAX_FLOW_DEPTH} levels of [ or {{)", source)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(where, f"not valid YAML: {problem}", source) from None
    except RecursionError:
        raise YamlProblem("YAML", "nested too deeply", source) from None
    if _expanded_size_exceeds(data, MAX_EXPANDED_VALUES):
        raise YamlProblem(
            "YAML",
            f"more than {MAX_EXPANDED_VALUES} values once aliases are expanded; split the file or drop the aliases",
            source,
        )
    return data


def load_yaml_file(path: Path | str) -> Any:
    """:func:`parse_yaml` of a file (``OSError`` when it cannot be read; a file that is not UTF-8 text
    is a :class:`YamlProblem` naming it)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise YamlProblem("file", "not UTF-8 text; a definition is a YAML file", str(path)) from None
    return parse_yaml(text, str(path))
