"""Load and check the gateway configuration beyond its schema: sources exist, paths carry their
parameters, conditions and templates parse, step targets are workflows, keys resolve.

Runs at `apeiro webhook serve` start (refusing to start on a problem) and in `apeiro webhook check`.
"""

from __future__ import annotations

import os
from pathlib import Path

from definitions.catalog import load_catalog
from definitions.expressions import ExpressionError, is_template, iter_templates, parse
from definitions.library import PipelineLibrary
from definitions.steptypes import StepKind
from definitions.triggers import GatewayConfig, HmacAuth, load_gateway_config
from definitions.validate import DefinitionError, Problem
from triggers.auth import KeyCache
from triggers.sources import SOURCES

#: The example configuration shipped with the project (`apeiro webhook serve` without --config).
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "definitions" / "webhooks.yaml"


def config_path(given: str | None = None) -> Path:
    return Path(given or os.environ.get("APEIRO_WEBHOOK_CONFIG") or DEFAULT_CONFIG)


def check_config(
    config: GatewayConfig, *, keys: KeyCache | None = None, library: PipelineLibrary | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    registry = load_catalog()
    known_pipelines = set((library or PipelineLibrary()).names())
    for i, route in enumerate(config.routes):
        at = f"routes[{i}]"
        source = SOURCES.get(route.source)
        if source is None:
            problems.append(
                Problem(f"{at}.source", f"unknown source {route.source!r}; known: {', '.join(sorted(SOURCES))}")
            )
            continue
        path = route.path or source.default_path(route.name)
        for param in source.path_params:
            if "{" + param + "}" not in path:
                problems.append(Problem(f"{at}.path", f"the {source.name} source needs {{{param}}} in its path"))
        if not route.rules and not source.default_rules():
            problems.append(Problem(f"{at}.rules", f"the {source.name} source has no default rules: declare some"))
        for j, rule in enumerate(route.rules):
            rat = f"{at}.rules[{j}]"
            try:
                parse(rule.when)
            except ExpressionError as exc:
                problems.append(Problem(f"{rat}.when", str(exc)))
            target = rule.target.model_dump(by_alias=True, exclude_none=True)
            for where, expr in iter_templates(target, f"{rat}.target"):
                try:
                    parse(expr)
                except ExpressionError as exc:
                    problems.append(Problem(where, str(exc)))
            t = rule.target
            if t.step is not None:
                if t.step not in registry:
                    problems.append(Problem(f"{rat}.target.step", registry.unknown_message(t.step)))
                elif registry.get(t.step).kind is not StepKind.WORKFLOW:
                    problems.append(
                        Problem(
                            f"{rat}.target.step", f"{t.step} is not a workflow step type; start it through a pipeline"
                        )
                    )
            if t.pipeline is not None and not is_template(t.pipeline) and t.pipeline not in known_pipelines:
                problems.append(
                    Problem(
                        f"{rat}.target.pipeline",
                        f"no pipeline named {t.pipeline!r} in the library "
                        f"(known: {', '.join(sorted(known_pipelines))})",
                    )
                )
        if keys is not None:
            refs = route.auth.secrets if isinstance(route.auth, HmacAuth) else getattr(route.auth, "tokens", [])
            for problem in keys.check(list(refs)):
                problems.append(Problem(f"{at}.auth", problem))
    return problems


def load_checked(path: Path, *, resolve_keys: bool = True) -> GatewayConfig:
    config = load_gateway_config(path)
    problems = check_config(config, keys=KeyCache(ttl=0) if resolve_keys else None)
    if problems:
        raise DefinitionError(problems, str(path))
    return config
