"""Simulated Gardener for the landscape API server: kinds, admission and a gardenlet.

Install as the plugin ``landscape.gardener``. Settings (``--set KEY=VALUE``): ``gardener.speed``
(simulated seconds per real second) and ``gardener.taskSeconds``. Admin endpoints:
``POST /admin/gardener/faults`` ({fault, shoot?, operation?, count?, atProgress?, simSeconds?}),
``DELETE /admin/gardener/faults``, ``POST /admin/gardener/settings`` ({speed?, taskSeconds?}),
``GET /admin/gardener/ready-log``. Day-2 operations (credential rotation, hibernation and its
schedules; ``gardener.hibernationInterval``) are in :mod:`landscape.gardener.day2` and
:mod:`landscape.gardener.hibernation`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from landscape.gardener import admission
from landscape.gardener.gardenlet import Gardenlet, ShootFault, snapshot
from landscape.gardener.hibernation import HibernationScheduler
from landscape.gardener.kinds import CORE, kinds


def install(server: Any) -> Gardenlet:
    for k in kinds():
        server.registry.register(k)
    shoot = server.registry.get(CORE, "v1beta1", "shoots")
    shoot.admit.append(admission.admit_shoot)
    shoot.validate.append(admission.validate_shoot)
    server.registry.get(CORE, "v1beta1", "cloudprofiles").validate.append(admission.validate_cloud_profile)
    cfg = server.plugin_config
    gardenlet = Gardenlet(
        server.store,
        speed=float(cfg.get("gardener.speed", 1200.0)),
        task_seconds=float(cfg.get("gardener.taskSeconds", 60.0)),
    )
    server.gardenlet = gardenlet

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            gardenlet.clear_faults()
            return JSONResponse({"cleared": True})
        if request.method == "GET":
            return JSONResponse(snapshot(gardenlet))
        body = await request.json()
        try:
            gardenlet.add_fault(
                ShootFault(
                    fault=body["fault"],
                    shoot=body.get("shoot"),
                    operation=body.get("operation"),
                    count=int(body.get("count", 1)),
                    at_progress=int(body.get("atProgress", 30)),
                    sim_seconds=float(body.get("simSeconds", 120.0)),
                )
            )
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(snapshot(gardenlet))

    async def settings(request: Request) -> Response:
        body = await request.json()
        if "speed" in body:
            gardenlet.speed = float(body["speed"])
        if "taskSeconds" in body:
            gardenlet.task_seconds = float(body["taskSeconds"])
        return JSONResponse(snapshot(gardenlet))

    async def ready_log(request: Request) -> Response:
        return JSONResponse(gardenlet.ready_log)

    server.admin_routes.extend(
        [
            Route("/admin/gardener/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/admin/gardener/settings", settings, methods=["POST"]),
            Route("/admin/gardener/ready-log", ready_log),
        ]
    )
    server.background.append(gardenlet.run)
    scheduler = HibernationScheduler(server.store, interval=float(cfg.get("gardener.hibernationInterval", 1.0)))
    server.hibernation = scheduler
    server.background.append(scheduler.run)
    return gardenlet
