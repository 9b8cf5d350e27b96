"""The CLI findings of issue 17, one test each: one-line errors and refusals where there were
tracebacks or silent acceptance."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from tests.unit.ocm.helpers import key_pem, new_key, vectors_dir
from workers.cli import main

KEY = new_key()
DESCRIPTOR = vectors_dir() / "jsonNormalisation-v3-conformance-01" / "input.yaml"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    assert "Traceback" not in out.getvalue() + err.getvalue(), err.getvalue()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "k.pem"
    path.write_bytes(key_pem(KEY))
    return path


def test_ocm_sign_refuses_a_certificate_file_without_a_certificate(tmp_path: Path, key_file: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate\n")
    code, out, err = run_cli(
        "ocm", "sign", str(DESCRIPTOR), "--private-key", str(key_file), "--name", "acme", "--certificate", str(cert)
    )
    assert code == 2 and "holds no PEM certificate" in err and out == ""


def test_ocm_sign_refuses_short_rsa_keys(tmp_path: Path) -> None:
    weak = tmp_path / "weak.pem"
    weak.write_bytes(key_pem(new_key(1024)))
    code, _, err = run_cli("ocm", "sign", str(DESCRIPTOR), "--private-key", str(weak), "--name", "acme")
    assert code == 1 and "1024 bits" in err and "at least 2048" in err


def test_ocm_sign_refuses_an_empty_name(key_file: Path) -> None:
    code, _, err = run_cli("ocm", "sign", str(DESCRIPTOR), "--private-key", str(key_file), "--name", " ")
    assert code == 1 and "needs a name" in err


def test_ocm_sign_into_a_missing_directory(tmp_path: Path, key_file: Path) -> None:
    code, _, err = run_cli(
        "ocm",
        "sign",
        str(DESCRIPTOR),
        "--private-key",
        str(key_file),
        "--name",
        "acme",
        "-o",
        str(tmp_path / "no" / "signed.yaml"),
    )
    assert code == 1 and "cannot write" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["digest", "sign", "verify"])
def test_ocm_deeply_nested_descriptor(tmp_path: Path, key_file: Path, command: str) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("component: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n")
    extra = {
        "digest": [],
        "sign": ["--private-key", str(key_file), "--name", "x"],
        "verify": ["--public-key", str(key_file)],
    }[command]
    code, _, err = run_cli("ocm", command, str(deep), *extra)
    assert code == 1 and "nested deeper than" in err, err


def test_graph_svg_into_a_missing_directory(tmp_path: Path) -> None:
    example = next((Path(__file__).resolve().parents[3] / "definitions" / "examples").glob("*.yaml"))
    code, _, err = run_cli("graph", str(example), "--svg", str(tmp_path / "no" / "g.svg"))
    assert code != 0 and err.strip() and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "command",
    [["validate"], ["graph"], ["run"], ["schedule", "apply"], ["baremetal", "validate-site"], ["promote", "validate"]],
)
def test_binary_files_name_the_file(tmp_path: Path, command: list[str]) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x00\xff\xfe" * 100)
    code, out, err = run_cli(*command, str(binary))
    assert code != 0
    assert "UTF-8" in out + err or "not valid" in out + err or "bin.yaml" in out + err, out + err


def test_webhook_sign_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("I17_KEY", "k")
    code, _, err = run_cli("webhook", "sign", str(tmp_path / "missing.json"), "--key-ref", "env:I17_KEY")
    assert code != 0 and "missing.json" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("flags", [["--timeout", "-1"], ["--bmc", "::not a url::"]])
def test_baremetal_inventory_bad_flags_are_one_line(flags: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("I17_PW", "pw")
    argv = ["baremetal", "inventory", "--bmc", "http://127.0.0.1:9", "--username", "u", "--password-env", "I17_PW"]
    code, _, err = run_cli(*argv, *flags)
    assert code != 0 and err.strip(), err
    assert len(err.strip().splitlines()) == 1, err


def test_status_of_an_empty_id(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_cli("status", "")
    assert code == 2 and "workflow id" in err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cron: ['99 99 * * *']", "outside 0-59"),
        ("cron: ['0 3 * *']", "has 4 fields"),
        ("calendars: [{hour: '25'}]", "outside 0-23"),
        ("every: ['0s']", "at least 1 s"),
    ],
)
def test_schedule_dry_run_refuses_specs_the_server_refuses(tmp_path: Path, spec: str, message: str) -> None:
    f = tmp_path / "schedules.yaml"
    f.write_text(
        "apiVersion: apeiro.dev/v1alpha1\nkind: ScheduleSet\nschedules:\n"
        f"  - id: nightly\n    pipeline: hello\n    {spec}\n"
    )
    code, out, err = run_cli("schedule", "apply", str(f), "--dry-run")
    assert code == 1 and message in err, out + err
    assert "+ create" not in out


def test_broken_pipe_ends_quietly() -> None:
    """`apeiro webhook openapi | head -1` (60 KB): no BrokenPipeError traceback once the reader is gone."""
    proc = subprocess.run(
        f"{sys.executable} -m workers.cli webhook openapi | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        timeout=120,
    )
    assert proc.stdout.strip(), proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_run_with_the_id_of_a_running_workflow_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """`apeiro run --id X` while X runs: Temporal answers "already started"; one line says what to do."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    import workers.cli.pipeline as pipeline_cli

    async def taken(*args: object, **kwargs: object) -> None:
        raise WorkflowAlreadyStartedError("nightly-1", "PipelineWorkflow")

    async def client() -> object:
        return object()

    monkeypatch.setattr(pipeline_cli, "start_pipeline", taken)
    monkeypatch.setattr(pipeline_cli, "client_from_env", client)
    code, _, err = run_cli("run", "server-site", "--id", "nightly-1")
    assert code == 1 and "already running" in err and "apeiro status nightly-1" in err, err
    assert len(err.strip().splitlines()) == 1
