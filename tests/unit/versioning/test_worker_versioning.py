"""`apeiro worker` versioning flags and the behaviour every workflow type declares."""

from __future__ import annotations

import pytest
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.workflow import _Definition

from workers.cli import main
from workers.queues import contents_for, known_queues
from workers.versioning import VersioningConfigError, deployment_config, deployment_version, registered_workflows
from workflows.versioned import BEHAVIOURS

#: Long-lived types move to a new build at their next task (their changes go behind workflow.patched);
#: every other type is pinned to the build it started on. docs/architecture.md "Changing a workflow".
AUTO_UPGRADE = {
    "PipelineWorkflow",
    "PromotionWorkflow",
    "PromotionCoordinatorWorkflow",
    "PromotionStepWorkflow",
    "ClusterMaintainWorkflow",
    # issue 16: rotation may pause between phases, a freeze lasts until it ends, a rollout soaks and
    # waits on approvals between waves
    "ClusterRotateCredentialsWorkflow",
    "FreezeWorkflow",
    "FleetRolloutWorkflow",
}


def _registered() -> dict[str, type]:
    out = {}
    for queue in known_queues():
        for wf in contents_for(queue).workflows:
            name = _Definition.must_from_class(wf).name
            assert name
            out[name] = wf
    return out


def test_every_workflow_type_declares_its_versioning_behaviour() -> None:
    registered = _registered()
    assert len(registered) >= 10
    assert sorted(set(registered) - set(BEHAVIOURS)) == []
    auto = {n for n, b in BEHAVIOURS.items() if b == VersioningBehavior.AUTO_UPGRADE}
    assert auto == AUTO_UPGRADE
    version = WorkerDeploymentVersion("apeiro", "b1")
    for name, cls in registered.items():
        # Unversioned workers register the plain class: a real server refuses a behaviour from them.
        assert registered_workflows([cls], None) == [cls]
        assert not _Definition.must_from_class(cls).versioning_behavior, name
        (variant,) = registered_workflows([cls], version)
        defn = _Definition.must_from_class(variant)
        assert (defn.name, defn.versioning_behavior) == (name, BEHAVIOURS[name])
        plain = _Definition.must_from_class(cls)
        assert defn.arg_types == plain.arg_types and set(defn.queries) == set(plain.queries)
        assert set(defn.updates) == set(plain.updates) and set(defn.signals) == set(plain.signals)


def test_flags_win_over_environment_and_neither_means_unversioned() -> None:
    env = {"APEIRO_DEPLOYMENT_NAME": "apeiro", "APEIRO_BUILD_ID": "env-build"}
    assert deployment_version(None, None, env) == WorkerDeploymentVersion("apeiro", "env-build")
    assert deployment_version(None, "v1.2.3+abc", env) == WorkerDeploymentVersion("apeiro", "v1.2.3+abc")
    assert deployment_version(None, None, {}) is None
    assert deployment_config(None) is None
    config = deployment_config(WorkerDeploymentVersion("apeiro", "b"))
    assert config is not None and config.use_worker_versioning
    assert config.default_versioning_behavior == VersioningBehavior.PINNED


@pytest.mark.parametrize(
    ("name", "build", "message"),
    [
        ("apeiro", "", "without a build id"),
        ("", "abc", "without a deployment name"),
        ("ape.iro", "abc", "no '.'"),
        ("apeiro", "has space", "build id 'has space' is not valid"),
        ("apeiro", "x" * 101, "at most 100"),
    ],
)
def test_misconfigured_versioning_is_refused(name: str, build: str, message: str) -> None:
    with pytest.raises(VersioningConfigError, match=message):
        deployment_version(name, build, {})


def test_worker_with_a_build_id_but_no_deployment_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APEIRO_DEPLOYMENT_NAME", raising=False)
    assert main(["worker", "--queues", "pipeline", "--build-id", "b1"]) == 2
    err = capsys.readouterr().err
    assert "build id without a deployment name" in err and "--deployment-name" in err
    assert "Traceback" not in err


def test_deploy_describe_needs_a_deployment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APEIRO_DEPLOYMENT_NAME", raising=False)
    assert main(["deploy", "describe"]) == 2
    assert "name a deployment" in capsys.readouterr().err


async def test_a_server_without_worker_deployments_stops_a_versioned_worker(ts_env: object) -> None:
    """The time-skipping test server has no Worker Deployments: the worker names the problem (exit 2)."""
    from temporalio.testing import WorkflowEnvironment

    from workers.deploy import check_deployment

    assert isinstance(ts_env, WorkflowEnvironment)
    problem = await check_deployment(ts_env.client, WorkerDeploymentVersion("apeiro", "b1"))
    assert problem is not None
    assert problem.startswith("cannot run as apeiro.b1: ") and "--build-id" in problem


def test_status_shows_the_definition_revision() -> None:
    from definitions.runs import PipelineStatus, RunState
    from workers.cli.pipeline import format_status

    st = PipelineStatus(pipeline="p", workflow_id="w", state=RunState.RUNNING, steps=[], revision="0123456789abcdef")
    assert "definition 0123456789abcdef" in format_status(st).splitlines()[0]
    assert "definition" not in format_status(st.model_copy(update={"revision": None})).splitlines()[0]
