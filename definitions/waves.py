"""Wave arithmetic shared by fleet rollouts (``definitions/rollout.py``) and promotions across landscapes
(``definitions/promotion.py``): cumulative boundaries, each a count or a percentage of all targets."""

from __future__ import annotations

import math
import re
from typing import Annotated, TypeVar

from pydantic import AfterValidator

PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
T = TypeVar("T")


def check_waves(waves: list[int | str]) -> list[int | str]:
    """Each boundary is a count >= 1 or a percentage like '25%'; a ValueError names the first that is not."""
    for w in waves:
        if (isinstance(w, int) and w < 1) or (isinstance(w, str) and not PERCENT.match(w.strip())):
            raise ValueError(f"a wave is a count >= 1 or a percentage like '25%', got {w!r}")
    return waves


#: Wave boundaries as a model field: checked where they are declared.
Waves = Annotated[list[int | str], AfterValidator(check_waves)]


def wave_size(value: int | str, total: int) -> int:
    """A wave boundary: a count, or a percentage of all targets (rounded up, at least one)."""
    if isinstance(value, int):
        return min(value, total)
    m = PERCENT.match(value.strip())
    assert m is not None
    return min(total, max(1, math.ceil(total * float(m.group(1)) / 100)))


def plan_waves(waves: list[int | str], targets: list[T]) -> list[list[T]]:
    """Cumulative boundaries -> waves; whatever the last boundary leaves out forms a final wave."""
    total, out, done = len(targets), [], 0
    for w in waves:
        upto = wave_size(w, total)
        if upto > done:
            out.append(targets[done:upto])
            done = upto
    if done < total:
        out.append(targets[done:])
    return out
