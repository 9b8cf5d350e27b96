"""A run drawn as its DAG: Graphviz DOT coloured by each step's live state, rendered to SVG by `dot`.

Graphviz does the layout (the Temporal UI cannot draw a DAG; hand-made layout would be worse). Every
step is drawn, including the ones that have not started. Each node carries ``id="step-NAME"`` and
``class="step state-STATE"`` into the SVG so the page (and the browser test) can find it.
"""

from __future__ import annotations

import asyncio
import shutil

from definitions.pipeline import Pipeline, Step
from definitions.runs import PipelineStatus, StepState, StepStatus

#: Fill colours by state (colour-blind safe pairs: blue/orange for running/waiting, green/red ends).
COLOURS: dict[StepState, str] = {
    StepState.PENDING: "#f2f2f2",
    StepState.RUNNING: "#9ecae1",
    StepState.WAITING: "#fdae6b",
    StepState.SUCCEEDED: "#a1d99b",
    StepState.FAILED: "#fb6a4a",
    StepState.SKIPPED: "#d9d9d9",
    StepState.CANCELLED: "#bdbdbd",
}


class GraphvizMissing(RuntimeError):
    """`dot` is not installed; the message says how to install it."""


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def took(s: StepStatus) -> str:
    if s.started_at and s.finished_at:
        return f"{(s.finished_at - s.started_at).total_seconds():.1f}s"
    return ""


def _label(step: Step, s: StepStatus | None) -> str:
    lines = [step.name, step.uses]
    if s is not None:
        head = s.state.value + (f" · {took(s)}" if took(s) else "")
        lines.append(head)
        if s.items_total is not None:
            failed = f", {s.items_failed} failed" if s.items_failed else ""
            lines.append(f"items {s.items_done}/{s.items_total}{failed}")
        if s.error:
            lines.append(s.error[:60] + ("…" if len(s.error) > 60 else ""))
        elif s.state is StepState.WAITING and s.message:
            lines.append(s.message[:60] + ("…" if len(s.message) > 60 else ""))
    return "\\n".join(_esc(x) for x in lines)


def status_dot(pipeline: Pipeline, status: PipelineStatus | None) -> str:
    """DOT of the pipeline with each node filled by its state; forEach steps sit in a titled cluster."""
    by_name = {s.name: s for s in status.steps} if status else {}
    out = [
        f'digraph "{_esc(pipeline.name)}" {{',
        '  rankdir=TB; bgcolor="transparent";',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [color="#666666"];',
    ]
    for step in pipeline.spec.steps:
        s = by_name.get(step.name)
        state = s.state if s else StepState.PENDING
        style = "rounded,filled" + (",dashed" if state in (StepState.SKIPPED, StepState.CANCELLED) else "")
        width = ", penwidth=2.5" if state in (StepState.RUNNING, StepState.WAITING, StepState.FAILED) else ""
        node = (
            f'"{_esc(step.name)}" [id="step-{_esc(step.name)}", class="step state-{state.value}", '
            f'label="{_label(step, s)}", fillcolor="{COLOURS[state]}", style="{style}"{width}, '
            f'tooltip="{_esc((s.error or s.message) if s else "not started")}"];'
        )
        if step.for_each is not None:
            count = f"{s.items_done}/{s.items_total}" if s and s.items_total is not None else "not expanded"
            out += [
                f'  subgraph "cluster_{_esc(step.name)}" {{',
                f'    id="group-{_esc(step.name)}"; label="forEach: {_esc(count)}"; style="rounded,dashed";'
                ' fontname="Helvetica"; fontsize=10;',
                f"    {node}",
                "  }",
            ]
        else:
            out.append(f"  {node}")
    for step in pipeline.spec.steps:
        for dep in step.needs:
            out.append(f'  "{_esc(dep)}" -> "{_esc(step.name)}";')
    out.append("}")
    return "\n".join(out) + "\n"


async def to_svg(dot_source: str, timeout: float = 10.0) -> str:
    """SVG from Graphviz `dot` (run as a subprocess with a timeout; no shell)."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing("Graphviz `dot` is not installed (Debian: apt-get install graphviz)")
    proc = await asyncio.create_subprocess_exec(
        dot, "-Tsvg", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(dot_source.encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {err.decode(errors='replace')[:500]}")
    text = out.decode()
    # Drop the XML prologue and DOCTYPE so the SVG can be inlined into the page.
    return text[text.find("<svg") :]
