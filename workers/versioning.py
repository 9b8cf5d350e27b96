"""Worker Deployment Versioning: which build of the workers a workflow run executes on.

A worker started with a deployment name and a build id (``apeiro worker --deployment-name D
--build-id B`` or ``APEIRO_DEPLOYMENT_NAME`` / ``APEIRO_BUILD_ID``) registers as version ``D.B``.
New runs go to the deployment's *current* version; ``apeiro deploy set-current`` moves it. Each
workflow type has a declared behaviour (workflows/versioned.py) that says what happens to its runs
then: ``PINNED`` runs finish on the build they started on (the old workers keep serving them),
``AUTO_UPGRADE`` runs move to the new build at their next task (so the new code must replay them:
changes guarded by ``workflow.patched``). docs/architecture.md "Changing a workflow" has the policy.

Without a deployment name and build id a worker is unversioned (development, tests), as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

ENV_DEPLOYMENT = "APEIRO_DEPLOYMENT_NAME"
ENV_BUILD_ID = "APEIRO_BUILD_ID"

#: The server joins them as ``<deployment>.<build>``, so a deployment name holds no dot.
_DEPLOYMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_BUILD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


class VersioningConfigError(ValueError):
    """A deployment name or build id that cannot work; the message says how to fix it."""


def deployment_version(
    deployment_name: str | None, build_id: str | None, env: Mapping[str, str] | None = None
) -> WorkerDeploymentVersion | None:
    """The version a worker registers as, from flags first and the environment second.

    Both or neither: a build id without a deployment (or the reverse) is a misconfiguration that
    would otherwise silently start an unversioned worker next to versioned ones.
    """
    env = os.environ if env is None else env
    name = (deployment_name if deployment_name is not None else env.get(ENV_DEPLOYMENT, "")).strip()
    build = (build_id if build_id is not None else env.get(ENV_BUILD_ID, "")).strip()
    if not name and not build:
        return None
    if not name or not build:
        given, missing = (
            ("build id", f"--deployment-name or {ENV_DEPLOYMENT}")
            if build
            else ("deployment name", f"--build-id or {ENV_BUILD_ID}")
        )
        raise VersioningConfigError(
            f"a {given} without a {'deployment name' if build else 'build id'}: "
            f"set {missing} too, or neither for an unversioned worker"
        )
    if not _DEPLOYMENT_RE.fullmatch(name):
        raise VersioningConfigError(
            f"deployment name {name!r} is not valid: letters, digits, '-' and '_' (no '.'), at most 100 characters"
        )
    if not _BUILD_RE.fullmatch(build):
        raise VersioningConfigError(
            f"build id {build!r} is not valid: letters, digits, '.', '_', '+' and '-', "
            "at most 100 characters (a git commit or a release tag)"
        )
    return WorkerDeploymentVersion(deployment_name=name, build_id=build)


def registered_workflows(workflows: Sequence[type], version: WorkerDeploymentVersion | None) -> list[type]:
    """The classes a worker registers: as given when unversioned, else their variants that carry the
    declared behaviour (workflows/versioned.py says why the plain classes declare none)."""
    if version is None:
        return list(workflows)
    from workflows.versioned import for_versioned_worker

    return [for_versioned_worker(w) for w in workflows]


def deployment_config(version: WorkerDeploymentVersion | None) -> WorkerDeploymentConfig | None:
    """The SDK's config for a versioned worker; ``None`` keeps it unversioned.

    The default behaviour is PINNED (the safe one) for workflow types that declare none, such as
    probes tests register; every product workflow declares its own (a unit test checks).
    """
    if version is None:
        return None
    return WorkerDeploymentConfig(
        version=version, use_worker_versioning=True, default_versioning_behavior=VersioningBehavior.PINNED
    )
