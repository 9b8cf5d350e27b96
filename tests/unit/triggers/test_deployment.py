"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the file parses, every
service's command exists in the project, ports and environment are consistent, and the image installs
what pyproject.toml declares."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.cli import build_parser
from workers.cli.worker import parse_queues
from workers.config import TemporalSettings

REPO = Path(__file__).resolve().parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PROJECT = {name for name, svc in SERVICES.items() if svc.get("image", "").startswith("apeiro-orchestrator")}
DOCKERFILE = (REPO / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def container_port(mapping: str) -> int:
    return int(str(mapping).split(":")[-1])


def test_compose_has_the_production_pieces() -> None:
    assert {"postgresql", "temporal", "temporal-ui", "webhook", "prometheus"} <= set(SERVICES)
    assert SERVICES["temporal"]["environment"]["DB"].startswith("postgres")
    workers = {n for n in PROJECT if n.startswith("worker-")}
    assert len(workers) >= 3


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_every_project_command_exists(name: str) -> None:
    service = SERVICES[name]
    entrypoint = re.search(r'^ENTRYPOINT \["apeiro"\]', DOCKERFILE, re.M)
    assert entrypoint, "the image's entrypoint is the apeiro command"
    args = service["command"]
    parsed = build_parser().parse_args(args)
    assert getattr(parsed, "func", None) is not None, f"{name}: `apeiro {' '.join(args)}` is not a command"
    if args[0] == "worker":
        assert parse_queues(parsed.queues)
    for value in args:
        if value.startswith("/app/"):
            assert (REPO / value.removeprefix("/app/")).exists(), f"{name}: {value} is not in the image"


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_project_services_reach_temporal_and_parse_their_settings(name: str) -> None:
    env = env_of(SERVICES[name])
    host, port = env["TEMPORAL_ADDRESS"].split(":")
    assert host in SERVICES and port in [str(p) for p in SERVICES[host].get("expose", [])]
    # The same variables the process reads (workers/config.py): defaults substituted, they must validate.
    resolved = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in env.items()}
    assert TemporalSettings.from_env(resolved).address == env["TEMPORAL_ADDRESS"]


def test_workers_scale_and_webhook_port_matches_its_command() -> None:
    for name in PROJECT:
        if name.startswith("worker-"):
            assert "ports" not in SERVICES[name], f"{name}: host ports would break --scale"
            assert "container_name" not in SERVICES[name]
    web = SERVICES["webhook"]
    port = int(web["command"][web["command"].index("--port") + 1])
    assert [container_port(p) for p in web["ports"]] == [port]
    prom = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert f"webhook:{port}" in targets
    for target in targets:
        host, tport = target.split(":")
        assert host in SERVICES
        assert tport in [str(p) for p in SERVICES[host].get("expose", [])] + [
            str(container_port(p)) for p in SERVICES[host].get("ports", [])
        ]


def test_webhook_env_provides_every_key_the_config_references() -> None:
    cfg = yaml.safe_load((REPO / "definitions" / "webhooks.yaml").read_text())
    refs = {r for route in cfg["routes"] for r in route["auth"].get("secrets", []) + route["auth"].get("tokens", [])}
    env = env_of(SERVICES["webhook"])
    for ref in refs:
        assert ref.startswith("env:") and ref[4:] in env, f"{ref} is not set on the webhook service"


def test_every_compose_variable_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", (REPO / "docker-compose.yml").read_text()))
    documented = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert used <= documented, used - documented


def test_image_installs_what_pyproject_declares() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    installs = [line for line in DOCKERFILE.splitlines() if line.startswith("RUN pip install")]
    assert len(installs) == 1
    spec = shlex.split(installs[0].removeprefix("RUN "))[-1]
    match = re.fullmatch(r"\.\[([a-z,]+)\]", spec)
    assert match, spec
    wanted = set(match.group(1).split(","))
    assert wanted <= set(extras), wanted - set(extras)
    # The services the image runs need these extras: the gateway (webhook) and the gardener workers.
    assert {"webhook", "gardener"} <= wanted
    webhook_pkgs = {re.split(r"[<>=\[ ]", d)[0] for d in extras["webhook"]}
    assert {"fastapi", "uvicorn", "prometheus-client"} <= webhook_pkgs
    copied = set(re.findall(r"^COPY (\S+) ", DOCKERFILE, re.M)) | {"README.md"}
    packages = set(PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"])
    for pkg in packages:
        assert pkg.rstrip("*") in copied, f"package {pkg} is not copied into the image"
    for path in copied:
        assert (REPO / path).exists()
    assert "pyproject.toml" in DOCKERFILE and "USER apeiro" in DOCKERFILE


def test_extras_used_by_dev_include_webhook() -> None:
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert "apeiro-orchestrator[webhook]" in dev
