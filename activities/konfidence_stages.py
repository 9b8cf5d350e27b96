"""Konfidence Stages: point a Stage at a vector and wait until Konfidence reports it deployed and ready.

Everything here speaks Konfidence's API as its CRDs define it (see ``definitions/stage.py`` and
docs/promotion.md): ``spec.vector`` is the OCM reference string, readiness comes from the Stage's
conditions and ``status.vectorHistory``. Writes ask for ``fieldValidation=Strict`` so an unknown field
is refused (400) rather than silently pruned. Per target, the rollout can go through Konfidence's own
``VectorPromotion`` records instead of a direct patch (``Target.vector_promotion_config``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.secrets import resolve_secret
from definitions.promotion import STAGE_GROUP, STAGE_VERSION, Target
from definitions.promotion_runs import StageDeploy, StageDeployResult
from definitions.stage import (
    VectorRef,
    VectorReferenceError,
    history,
    last_verified,
    parse_vector,
    readiness,
    vector_ref,
)
from definitions.yamlfiles import YamlProblem, parse_yaml

TIMEOUT = httpx.Timeout(10.0)
#: Writes ask the API server to refuse unknown fields (400) instead of pruning them silently.
STRICT = {"fieldValidation": "Strict"}


def _fatal(message: str, type_: str) -> ApplicationError:
    return ApplicationError(message, type=type_, non_retryable=True)


class _Poll:
    """Reads of a Stage until it settles: 50 ms apart at first, then up to 2 s; past ``timeout_s``
    the wait fails non-retryably (StageNotReady)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.deadline = asyncio.get_running_loop().time() + timeout_s
        self.delay = 0.05

    async def next(self, not_ready: str) -> None:
        """Wait for the next read, or fail with ``not_ready`` (what is still missing) when time is up."""
        if asyncio.get_running_loop().time() > self.deadline:
            raise _fatal(f"{not_ready}: not done within {self.timeout_s:.0f}s", "StageNotReady")
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 1.5, 2.0)


def _deployed(
    stage: str, previous: dict[str, Any] | None, ref: VectorRef, changed: bool, message: str
) -> StageDeployResult:
    return StageDeployResult(
        stage=stage, previous_vector=previous, vector=ref.as_vector(), changed=changed, message=message
    )


# --- Stages ---------------------------------------------------------------------------------------


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1  # ssl reports the missing file when it builds the context


def tls_context(verify: bool | str = True, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """One TLS context per (CA, client cert) as their files are now, shared by every Stage client and
    (with the defaults: httpx's own CA bundle, no client cert) by every gate request.

    httpx builds a context and loads the CA bundle into it for every new client: ~28 ms of CPU (under
    a profiler) on the worker's event loop per deploy_stage, where the gate activities and the workflow
    activations run (bench.promotion, 50 promotions). A rewritten CA or client cert file (new mtime) gets a
    new context."""
    files = ([verify] if isinstance(verify, str) else []) + list(cert or ())
    return _ssl_context_for(verify, cert, tuple(_mtime(f) for f in files))


@functools.lru_cache(maxsize=32)
def _ssl_context_for(verify: bool | str, cert: tuple[str, str] | None, _mtimes: tuple[int, ...]) -> ssl.SSLContext:
    if isinstance(verify, str):  # a CA file (or directory), as httpx's deprecated verify=<str> loaded it
        is_dir = os.path.isdir(verify)
        ctx = ssl.create_default_context(cafile=None if is_dir else verify, capath=verify if is_dir else None)
    else:
        ctx = httpx.create_ssl_context(verify=verify)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


@functools.lru_cache(maxsize=32)
def _parse_kubeconfig(text: str) -> Any:
    """The kubeconfig parsed once per content (KubeTarget only reads it; ~15 ms of YAML per deploy)."""
    return parse_yaml(text)


class KubeTarget:
    """Just enough of a kubeconfig for Konfidence Stages: server, bearer token or client cert, CA."""

    def __init__(self, target: Target) -> None:
        self.target = target
        config = self._load()
        contexts: dict[str, dict[str, Any]] = {c["name"]: c["context"] for c in config.get("contexts") or []}
        ctx: dict[str, Any] = contexts.get(config.get("current-context", "")) or next(iter(contexts.values()), {})
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
        users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
        cluster = clusters.get(ctx.get("cluster", "")) or next(iter(clusters.values()), None)
        if not cluster or "server" not in cluster:
            raise _fatal(f"{self.where}: the kubeconfig names no cluster server", "StageConfigError")
        user = users.get(ctx.get("user", ""), {})
        self.server = cluster["server"].rstrip("/")
        headers = {"Accept": "application/json"}
        if user.get("token"):
            headers["Authorization"] = f"Bearer {user['token']}"
        verify: Any = not cluster.get("insecure-skip-tls-verify", False)
        if cluster.get("certificate-authority"):
            verify = cluster["certificate-authority"]
        cert = (user["client-certificate"], user["client-key"]) if user.get("client-certificate") else None
        self.client = httpx.AsyncClient(
            base_url=self.server, headers=headers, verify=tls_context(verify, cert), timeout=TIMEOUT
        )

    @property
    def where(self) -> str:
        t = self.target
        return f"Stage {t.namespace}/{t.stage}" + (f" on landscape {t.landscape}" if t.landscape else "")

    def _load(self) -> dict[str, Any]:
        t = self.target
        if t.kubeconfig:
            path = resolve_secret(t.kubeconfig) if t.kubeconfig.startswith(("env:", "file:", "k8s:")) else t.kubeconfig
        elif t.landscape:
            var = f"APEIRO_LANDSCAPE_{t.landscape.upper().replace('-', '_')}_KUBECONFIG"
            path = os.environ.get(var) or (
                os.environ.get("APEIRO_GARDEN_KUBECONFIG", "") if t.landscape == "local" else ""
            )
            if not path:
                raise _fatal(
                    f"{self.where}: set {var} on the konfidence worker to the landscape's kubeconfig",
                    "StageConfigError",
                )
        else:
            path = os.environ.get("APEIRO_GARDEN_KUBECONFIG", "")
            if not path:
                raise _fatal(
                    f"{self.where}: no kubeconfig; give target.kubeconfig or target.landscape, or set "
                    "APEIRO_GARDEN_KUBECONFIG on the worker",
                    "StageConfigError",
                )
        try:
            text = Path(path).read_text() if "\n" not in path else path
            data = _parse_kubeconfig(text)
        except (OSError, YamlProblem) as exc:
            raise _fatal(f"{self.where}: cannot read kubeconfig {path}: {exc}", "StageConfigError") from None
        if not isinstance(data, dict):
            raise _fatal(f"{self.where}: {path} is not a kubeconfig", "StageConfigError")
        return data

    @property
    def promotions_path(self) -> str:
        return f"/apis/{STAGE_GROUP}/{STAGE_VERSION}/namespaces/{self.target.namespace}/vectorpromotions"

    @property
    def path(self) -> str:
        t = self.target
        return f"/apis/{STAGE_GROUP}/{STAGE_VERSION}/namespaces/{t.namespace}/stages/{t.stage}"

    async def get(self) -> dict[str, Any] | None:
        resp = await self.client.get(self.path)
        if resp.status_code == 404:
            return None
        self._check(resp)
        result: dict[str, Any] = resp.json()
        return result

    def _check(self, resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        try:
            message = resp.json().get("message", resp.text)
        except ValueError:
            message = resp.text
        if resp.status_code in (400, 401, 403, 422):
            raise _fatal(f"{self.where}: {resp.status_code} {message}", "StageRejected")
        raise ApplicationError(f"{self.where}: {resp.status_code} {message}", type="StageUnavailable")

    async def check_served(self) -> None:
        """Discovery first: a landscape without Konfidence's Stage CRD is a configuration error, not a retry."""
        resp = await self.client.get(f"/apis/{STAGE_GROUP}/{STAGE_VERSION}")
        served = resp.status_code == 200 and any(
            r.get("name") == "stages" for r in (resp.json().get("resources") or []) if isinstance(r, dict)
        )
        if resp.status_code == 404 or (resp.status_code == 200 and not served):
            raise _fatal(
                f"{self.where}: {self.server} does not serve {STAGE_GROUP}/{STAGE_VERSION} stages (discovery "
                f"answered {resp.status_code}): Konfidence's Stage CRD is not installed on that landscape; "
                "install Konfidence there or point the target at the right landscape",
                "StageCrdMissing",
            )
        self._check(resp)

    async def set_vector(self, reference: str) -> dict[str, Any]:
        obj = await self.get()
        if obj is None:
            body = {
                "apiVersion": f"{STAGE_GROUP}/{STAGE_VERSION}",
                "kind": "Stage",
                "metadata": {"name": self.target.stage, "namespace": self.target.namespace},
                "spec": {"vector": reference},
            }
            resp = await self.client.post(self.path.rsplit("/", 1)[0], json=body, params=STRICT)
        else:
            resp = await self.client.patch(
                self.path,
                content=json.dumps({"spec": {"vector": reference}}),
                headers={"Content-Type": "application/merge-patch+json"},
                params=STRICT,
            )
        self._check(resp)
        result: dict[str, Any] = resp.json()
        return result


def _previous(stage: dict[str, Any] | None, deploying: str) -> dict[str, Any] | None:
    """The vector to roll back to: the newest verified one (``vectorHistory``) other than ``deploying``."""
    if stage is None:
        return None
    for ref in reversed(history(stage)):
        if ref == deploying:
            continue
        try:
            return parse_vector(ref).as_vector()
        except VectorReferenceError:
            continue
    return None


def _reference(vector: dict[str, Any] | str, stage: dict[str, Any] | None) -> VectorRef:
    """The OCM reference to write: given as a string, the Stage's verified one for that version, or built."""
    if isinstance(vector, str):
        return parse_vector(vector)
    if vector.get("reference"):
        return parse_vector(str(vector["reference"]))
    component, version = str(vector.get("component") or ""), str(vector.get("version") or "")
    verified = last_verified(stage, component, version) if stage is not None else None
    if verified is not None:
        return parse_vector(verified)  # re-point to exactly what was verified (rollback)
    repository = str(vector.get("repository") or "")
    if repository.startswith(("env:", "file:", "k8s:")):
        repository = resolve_secret(repository).strip()
    return vector_ref(repository, component, version)


@activity.defn(name="konfidence.deploy_stage")
async def deploy_stage(request: StageDeploy) -> StageDeployResult:
    """Point the Stage's ``spec.vector`` at the OCM reference (idempotent) and wait until it is deployed.

    Ready is read from the Stage as Konfidence reports it (``definitions.stage.readiness``): the
    ``VectorDeployed`` and ``Ready`` conditions True for the generation written, and the reference the
    newest in ``status.vectorHistory``. Heartbeats while it waits; gives up after
    ``ready_timeout_seconds`` with a non-retryable ``StageNotReady`` naming the condition's reason.
    """
    kube = KubeTarget(request.target)
    name = f"{request.target.namespace}/{request.target.stage}"
    try:
        await kube.check_served()
        details = activity.info().heartbeat_details
        before = await kube.get()
        try:
            ref = _reference(request.vector, before)
        except VectorReferenceError as exc:
            raise _fatal(f"Stage {name}: {exc}", "StageReferenceInvalid") from None
        previous = details[0] if details else _previous(before, ref.reference)
        changed = ((before or {}).get("spec") or {}).get("vector") != ref.reference
        if request.target.vector_promotion_config:
            return await _through_promotion(kube, request, ref, before, previous, changed)
        obj = await kube.set_vector(ref.reference) if changed else before
        assert obj is not None
        generation = int(obj["metadata"].get("generation", 1))
        poll = _Poll(request.ready_timeout_seconds)
        while True:
            activity.heartbeat(previous)
            current = await kube.get()
            if current is None:
                raise _fatal(f"Stage {name} was deleted while deploying", "StageDeleted")
            state = readiness(current, ref.reference, generation)
            if state.state == "ready":
                return _deployed(name, previous, ref, changed, state.message or "Ready")
            if state.state == "failed":
                raise _fatal(f"Stage {name}: deploying {ref.reference} failed: {state.describe()}", "StageDeployFailed")
            if state.state == "replaced":
                raise _fatal(
                    f"Stage {name}: {ref.reference} was replaced while deploying ({state.message}); "
                    "another writer changed spec.vector",
                    "StageDeployFailed",
                )
            await poll.next(f"Stage {name} did not become Ready with {ref.reference} ({state.describe()})")
    except httpx.HTTPError as exc:
        raise ApplicationError(f"Stage {name}: {type(exc).__name__}: {exc}", type="StageUnavailable") from None
    finally:
        await kube.client.aclose()


# --- through Konfidence's VectorPromotion records ----------------------------------------------------


async def _promotions(kube: KubeTarget) -> list[dict[str, Any]]:
    resp = await kube.client.get(kube.promotions_path)
    if resp.status_code == 404:
        raise _fatal(
            f"{kube.where}: {kube.server} does not serve {STAGE_GROUP}/{STAGE_VERSION} vectorpromotions: "
            "Konfidence's VectorPromotion CRD is not installed there; drop vectorPromotionConfig from the "
            "target or install it",
            "StageCrdMissing",
        )
    kube._check(resp)
    items: list[dict[str, Any]] = resp.json().get("items") or []
    return items


async def _ensure_promotion(kube: KubeTarget, request: StageDeploy, ref: VectorRef) -> dict[str, Any]:
    """The promotion of this vector to this Stage: an open or succeeded one if it exists, else a new one."""
    t = request.target
    config = str(t.vector_promotion_config)
    for _ in range(5):
        mine = [p for p in await _promotions(kube) if (p.get("spec") or {}).get("vectorPromotionConfigName") == config]
        for p in sorted(mine, key=lambda p: -int(p["spec"].get("sequence") or 0)):
            state = (p.get("status") or {}).get("state")
            if (
                p["spec"].get("vector") == ref.reference
                and p["spec"]["target"].get("name") == t.stage
                and state not in ("Failed", "Superseded")
            ):
                return p
        sequence = 1 + max((int(p["spec"].get("sequence") or 0) for p in mine), default=0)
        body = {
            "apiVersion": f"{STAGE_GROUP}/{STAGE_VERSION}",
            "kind": "VectorPromotion",
            "metadata": {
                "name": f"{config}-{sequence}",
                "namespace": t.namespace,
                "labels": {"apeiro.dev/stage": t.stage},
            },
            "spec": {
                "vectorPromotionConfigName": config,
                "vector": ref.reference,
                "sequence": sequence,
                "source": {"kind": "VectorTemplate", "name": ref.component.replace("/", ".")[:253]},
                "target": {"kind": "Stage", "name": t.stage, "landscape": t.landscape or "local"},
                "requireApproval": request.approved_by is not None,
            },
        }
        resp = await kube.client.post(kube.promotions_path, json=body, params=STRICT)
        if resp.status_code == 409:
            continue  # another writer took that sequence: read again
        kube._check(resp)
        created: dict[str, Any] = resp.json()
        return created
    raise ApplicationError(
        f"{kube.where}: could not claim a VectorPromotion sequence of {config} (5 conflicts)", type="StageUnavailable"
    )


async def _approve(kube: KubeTarget, promotion: dict[str, Any], who: str) -> None:
    """Record the approval where Konfidence keeps it (what its ``vectorpromotion.Approve`` writes)."""
    status = promotion.get("status") or {}
    if status.get("approval") or status.get("state") in ("Succeeded", "Failed", "Superseded"):
        return
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Approved"]
    conditions.append(
        {
            "type": "Approved",
            "status": "True",
            "reason": "ManuallyApproved",
            "message": f"promotion of vector {promotion['spec']['vector']!r} approved by {who}",
            "observedGeneration": promotion["metadata"].get("generation", 1),
            "lastTransitionTime": now,
        }
    )
    patch = {
        "metadata": {"resourceVersion": promotion["metadata"]["resourceVersion"]},
        "status": {"approval": {"approvedBy": who, "approvedAt": now}, "conditions": conditions},
    }
    resp = await kube.client.patch(
        f"{kube.promotions_path}/{promotion['metadata']['name']}/status",
        content=json.dumps(patch),
        params=STRICT,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    if resp.status_code != 409:  # 409: someone wrote meanwhile; the loop reads it again
        kube._check(resp)


async def _through_promotion(
    kube: KubeTarget,
    request: StageDeploy,
    ref: VectorRef,
    before: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    changed: bool,
) -> StageDeployResult:
    name = f"{request.target.namespace}/{request.target.stage}"
    if before is None:
        raise _fatal(
            f"Stage {name} does not exist; Konfidence blocks promotions to a Stage it cannot resolve "
            "(create the Stage, or drop vectorPromotionConfig to let the orchestrator create it)",
            "StageDeployFailed",
        )
    poll = _Poll(request.ready_timeout_seconds)
    while True:
        activity.heartbeat(previous)
        promotion = await _ensure_promotion(kube, request, ref)
        pname = promotion["metadata"]["name"]
        state = (promotion.get("status") or {}).get("state") or "Pending"
        if request.approved_by and state in ("Pending", "Waiting"):
            await _approve(kube, promotion, request.approved_by)
        why = next(
            (
                f"{c.get('reason')}: {c.get('message')}"
                for c in (promotion.get("status") or {}).get("conditions") or []
                if c.get("type") == "Succeeded"
            ),
            state,
        )
        if state == "Failed":
            raise _fatal(f"Stage {name}: VectorPromotion {pname} failed ({why})", "StageDeployFailed")
        if state == "Superseded":
            raise _fatal(
                f"Stage {name}: VectorPromotion {pname} was superseded by a newer one ({why}); it is "
                "locked and will not run",
                "StageDeployFailed",
            )
        if state == "Succeeded":
            current = await kube.get()
            if current is not None:
                ready = readiness(current, ref.reference, int(current["metadata"].get("generation", 1)))
                if ready.state == "ready":
                    return _deployed(name, previous, ref, changed, f"VectorPromotion {pname}: {ready.message}")
                why = ready.describe()
        await poll.next(f"Stage {name}: VectorPromotion {pname} did not finish (state {state}: {why})")
