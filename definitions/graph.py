"""Render a pipeline's DAG as Mermaid (for docs and the terminal) or Graphviz DOT (for SVG)."""

from __future__ import annotations

from definitions.pipeline import Pipeline, Step


def _label(step: Step) -> list[str]:
    lines = [step.name, step.uses]
    if step.for_each is not None:
        what = step.for_each if isinstance(step.for_each, str) else f"{len(step.for_each)} items"
        lines.append(f"forEach {what}" + (f" (max {step.max_parallel})" if step.max_parallel else ""))
    if step.when:
        lines.append(f"when {step.when}")
    return lines


def _escape_mermaid(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(pipeline: Pipeline) -> str:
    out = ["flowchart TD"]
    for step in pipeline.spec.steps:
        label = "<br/>".join(_escape_mermaid(x) for x in _label(step))
        shape = ('{{"', '"}}') if step.when else (('[["', '"]]') if step.for_each is not None else ('["', '"]'))
        out.append(f"  {step.name}{shape[0]}{label}{shape[1]}")
    for step in pipeline.spec.steps:
        for dep in step.needs:
            out.append(f"  {dep} --> {step.name}")
    return "\n".join(out) + "\n"


def _escape_dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(pipeline: Pipeline) -> str:
    out = [f'digraph "{_escape_dot(pipeline.name)}" {{', "  rankdir=TB;",
           '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];']
    for step in pipeline.spec.steps:
        label = "\\n".join(_escape_dot(x) for x in _label(step))
        extra = ', style="rounded,dashed,filled"' if step.when else ""
        extra += ", peripheries=2" if step.for_each is not None else ""
        out.append(f'  "{step.name}" [label="{label}"{extra}];')
    for step in pipeline.spec.steps:
        for dep in step.needs:
            out.append(f'  "{dep}" -> "{step.name}";')
    out.append("}")
    return "\n".join(out) + "\n"
