"""Limits on what a pipeline may ask of the engine, checked before start and again at run time.

Every limit is here, with the reason for its size, so `apeiro validate`, the workflow and the docs
(docs/reliability.md, "Limits") agree. A breach is reported with the limit in the message; it never
leaves a workflow task retrying (Temporal would retry it forever while the UI shows Running).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

#: Serialised size of a definition. It travels in the workflow input (and in every continue-as-new),
#: next to the inputs and the carried step outputs, under Temporal's 2 MiB payload limit and the
#: 4 MB gRPC message limit.
MAX_DEFINITION_BYTES = 512 * 1024
#: Serialised size of a run's inputs (same reason).
MAX_INPUT_BYTES = 256 * 1024
#: Steps in one pipeline. Each step costs history events and workflow-task CPU; fan out with
#: forEach (chunked into child workflows) or split into sub-pipelines for more.
MAX_STEPS = 1000
#: Serialised size of one step's outputs (each forEach item's outputs count on their own).
MAX_STEP_OUTPUT_BYTES = 256 * 1024
#: What a run carries across continue-as-new (definition, inputs and the outputs later steps still
#: read), kept below Temporal's 2 MiB payload limit with room for the envelope.
MAX_CONTINUATION_BYTES = 1536 * 1024
#: Sub-pipelines nested in one another (core.pipeline). Cycles are found at validation; this stops
#: dynamic ones (a pipeline name computed from an input) and keeps child ids under 1,000 characters.
MAX_PIPELINE_DEPTH = 10
#: Temporal's limit on a workflow id.
MAX_WORKFLOW_ID_CHARS = 1000
#: Longest duration anywhere (timeouts, waits, retry intervals): ten years. Temporal timers take up
#: to ~290 years; Python's timedelta overflows beyond ~2.7 million years.
MAX_DURATION = timedelta(days=3660)
#: CEL cost budget per evaluation, in evaluated syntax-tree nodes (Kubernetes counts a similar
#: budget). A simple reference costs ~10, ``l.map(v, v * 2)`` over 1,000 items ~15,000. It bounds the
#: CPU one expression may burn inside a workflow task: ~0.1 s on an idle core, ~0.4 s measured on a
#: 2-core machine at load 12 (and about twice that inside the workflow sandbox), below Temporal's
#: 2 s deadlock detector.
MAX_CEL_COST = 20_000
#: The same budget for all the expressions one workflow task evaluates together (the deadlock
#: detector times the whole task, and several steps can become ready in one).
MAX_CEL_COST_PER_TASK = 20_000

#: Values (list items, map entries, scalars) in one expression's result.
MAX_CEL_RESULT_VALUES = 100_000
#: Integers are int64 (CEL's int, protobuf's, most JSON parsers'); floats must be finite.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class LimitExceeded(ValueError):
    """A value breaks one of the limits above; the message names the field and the limit."""


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (what the pydantic data converter writes)."""
    return len(json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False).encode())


def size_text(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 and n >= 1024 else f"{n} bytes"


def bad_numbers(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Yield (path, problem) for every integer outside int64 and every NaN/Infinity inside ``value``."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, int):
            if not INT64_MIN <= node <= INT64_MAX:
                # str() of a huge int raises (Python caps it at 4,300 digits): estimate from the bits.
                digits = int(node.bit_length() * math.log10(2)) + 1
                yield where, f"an integer of about {digits} digits is outside the 64-bit range (±9.2e18)"
        elif isinstance(node, float):
            if not math.isfinite(node):
                yield where, f"{node!r} is not a finite number"
        elif isinstance(node, dict):
            stack.extend((v, f"{where}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))


def check_duration(value: timedelta) -> timedelta:
    if value > MAX_DURATION:
        raise ValueError(f"duration {value} is longer than the limit of {MAX_DURATION.days} days")
    return value
