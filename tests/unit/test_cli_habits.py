"""The CLI's habits: help for every option, one output flag, --version, completion, exit codes."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml

from definitions.runquery import RunFilter
from workers.cli import build_parser, main


def walk(parser: argparse.ArgumentParser, path: str = "apeiro"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}")


def test_every_option_and_argument_has_help() -> None:
    missing = []
    for path, parser in walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.help is None or (action.help != argparse.SUPPRESS and not action.help.strip()):
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "options without help text:\n" + "\n".join(missing)


def test_who_acts_is_always_spelled_as() -> None:
    """`--as` is the one flag for who acts; older spellings stay hidden."""
    for path, parser in walk(build_parser()):
        for action in parser._actions:
            for flag in ("--approver", "--by", "--user", "--requested-by"):
                if flag in action.option_strings:
                    assert action.help == argparse.SUPPRESS, f"{path}: {flag} is visible; use --as"


DATA_COMMANDS = ["validate", "status", "list", "watch", "steps", "pipelines", "rollout status"]


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_data_commands_take_the_output_flag(command: str) -> None:
    sub = dict(walk(build_parser()))[f"apeiro {command}"]
    flags = {f for a in sub._actions for f in a.option_strings}
    assert {"-o", "--output"} <= flags


def test_output_flag_works_before_and_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["steps", "-o", "json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert main(["-o", "yaml", "steps"]) == 0
    before = yaml.safe_load(capsys.readouterr().out)
    assert after == before and any(row["name"] == "core.echo" for row in after)


def test_deprecated_json_flag_still_works_and_warns(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["status", "some-id", "--json"])
    assert args.output == "json"
    assert "deprecated" in capsys.readouterr().err
    args = build_parser().parse_args(["validate", "x.yaml", "--format", "json"])
    assert args.output == "json"


def test_validate_json_and_text(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pipeline\n")
    assert main(["validate", str(bad), "-o", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False and out["problems"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("apeiro ")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_name_the_commands(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for word in ("watch", "cancel", "list", "--output"):
        assert word in script


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["list", "--state", "bogus"])
    assert exc.value.code == 2


def test_run_filter_query_quotes_values() -> None:
    q = RunFilter(pipeline="edge's", site="fra1", state="running").query()
    assert q == (
        "WorkflowType = 'PipelineWorkflow' AND ApeiroPipeline = 'edge\\'s' AND ApeiroSite = 'fra1' "
        "AND ExecutionStatus = 'Running'"
    )
    with pytest.raises(ValueError, match="use one of"):
        RunFilter(state="sleeping").query()


def test_transfer_progress_shows_bytes_and_rate_per_blob() -> None:
    import io

    from workers.cli.progress import MIB, TransferDisplay

    display = TransferDisplay(stream=io.StringIO())
    display.seen["blob-1"] = (display_time := __import__("time").monotonic() - 2.0, 0)
    lines = display.lines({"state": "copying", "blobs_done": 1, "blobs_total": 3}, {"blob-1": 20 * MIB})
    assert lines[0] == "copying: 1/3 blobs"
    assert lines[1].startswith("  blob-1: 20.0 MiB sent, ") and display.rates["blob-1"] > 5
    assert display_time > 0


def test_discovery_progress_counts_bmcs_done_as_batches_end() -> None:
    """The workflow's counters (pure state, no commands): a BMC is done once listed with a problem or
    no systems, or once every system behind it has been inventoried."""
    from definitions.server import (
        BmcConnection,
        BmcProblem,
        InventoryBatchResult,
        ListBatchResult,
        ListSystemsResult,
        SystemTarget,
    )
    from workflows.server import ServerDiscoveryWorkflow

    a, b, c, d = (BmcConnection(url=f"http://10.0.0.{n}", name=f"bmc{n}") for n in range(1, 5))
    wf = ServerDiscoveryWorkflow()
    wf._status.bmcs_total = 4
    wf._listed(
        [a, b, c],
        ListBatchResult(
            results=[
                ListSystemsResult(bmc_url=a.url, system_paths=["/s/1", "/s/2"]),
                ListSystemsResult(bmc_url=b.url, problem=BmcProblem(bmc_url=b.url, error_type="X", message="x")),
                ListSystemsResult(bmc_url=c.url, system_paths=[]),
            ]
        ),
    )
    assert (wf._status.bmcs_done, wf._status.problems) == (2, 1)  # b (problem) and c (no systems)
    wf._listed([d], RuntimeError("child failed"))
    assert (wf._status.bmcs_done, wf._status.problems) == (3, 2)
    wf._inventoried([SystemTarget(bmc=a, system_path="/s/1")], InventoryBatchResult())
    assert (wf._status.bmcs_done, wf._status.systems_done) == (3, 1)  # a still has /s/2 to read
    failed = BmcProblem(bmc_url=a.url, error_type="X", message="x", system_path="/s/2")
    wf._inventoried([SystemTarget(bmc=a, system_path="/s/2")], InventoryBatchResult(problems=[failed]))
    assert (wf._status.bmcs_done, wf._status.systems_done, wf._status.problems) == (4, 2, 3)


def test_discovery_display_shows_bmcs_done_of_total_and_problems() -> None:
    import io

    from rich.console import Console

    from definitions.server import DiscoveryProgress
    from workers.cli.progress import DiscoveryDisplay

    mid = DiscoveryProgress(state="inventorying", bmcs_total=10, bmcs_done=3, systems_total=40, systems_done=12,
                            problems=1)
    assert DiscoveryDisplay.text(mid) == "BMCs 3/10: inventorying, systems 12/40, 1 problem"
    done = DiscoveryProgress(state="done", bmcs_total=10, bmcs_done=10, systems_total=40, systems_done=40,
                             problems=2, servers=38)
    assert DiscoveryDisplay.text(done) == "BMCs 10/10: done, systems 40/40, 2 problems, 38 servers"

    plain = io.StringIO()  # not a terminal: one line per change, repeated states not printed twice
    display = DiscoveryDisplay(stream=plain)
    for p in (mid, mid, done):
        display.update(p)
    display.stop()
    assert plain.getvalue().splitlines() == ["  " + DiscoveryDisplay.text(mid), "  " + DiscoveryDisplay.text(done)]

    screen = io.StringIO()  # a terminal: rich's progress bar with the same numbers
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    display = DiscoveryDisplay(console=console)
    display.update(mid)
    assert display.progress.tasks[0].completed == 3 and display.progress.tasks[0].total == 10
    display.stop()
    drawn = screen.getvalue()
    assert "BMCs" in drawn and "3/10" in drawn and "systems 12/40, 1 problem" in drawn


async def test_blob_offsets_come_from_the_copy_activities_heartbeats() -> None:
    from types import SimpleNamespace

    from workers.cli.ocm import _blob_offsets
    from workers.config import data_converter

    converter = data_converter()
    payloads = await converter.encode([{"location": "http://r/upload/1", "offset": 1234}])

    def pending(kind: str, ident: str, details: list[object]) -> object:
        return SimpleNamespace(
            activity_type=SimpleNamespace(name=kind),
            activity_id=ident,
            heartbeat_details=SimpleNamespace(payloads=details),
        )

    description = SimpleNamespace(
        raw_description=SimpleNamespace(
            pending_activities=[
                pending("ocm.copy_blob", "blob-a", payloads),
                pending("ocm.copy_blob", "blob-b", []),  # no heartbeat yet
                pending("ocm.plan_transport", "plan", payloads),
            ]
        )
    )

    class Handle:
        async def describe(self) -> object:
            return description

    assert await _blob_offsets(SimpleNamespace(data_converter=converter), Handle()) == {"blob-a": 1234}


def test_unhandled_errors_map_to_the_documented_exit_codes() -> None:
    from temporalio.service import RPCError, RPCStatusCode

    from workers.cli import _exit_code
    from workers.config import ConfigError

    assert _exit_code(RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")) == 3
    assert _exit_code(ConfigError("TEMPORAL_ADDRESS is not host:port")) == 2
    assert _exit_code(ValueError("bad")) == 1


def test_an_action_on_a_run_that_has_ended_is_a_refusal_not_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    from temporalio.service import RPCError, RPCStatusCode

    from workers.cli.common import EXIT_FAILED, EXIT_NOT_FOUND, rpc_fail

    ended = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
    assert rpc_fail(ended, "cannot retry in r1") == EXIT_FAILED
    assert "refused, the run has ended" in capsys.readouterr().err
    missing = RPCError("workflow not found for ID: r2", RPCStatusCode.NOT_FOUND, b"")
    assert rpc_fail(missing, "cannot retry in r2") == EXIT_NOT_FOUND
