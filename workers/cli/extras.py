"""Which optional extra of ``apeiro-orchestrator`` provides a third-party module.

A command whose extra is not installed exits 2 with one line naming the extra to install, instead of
a ``ModuleNotFoundError`` traceback (``apeiro webhook serve`` without fastapi, a ``redfish`` worker
without sushy). ``tests/unit/test_cli_extras.py`` checks this table against pyproject.toml.
"""

from __future__ import annotations

#: top-level module -> (distribution that provides it, extra that installs it)
MODULE_EXTRAS: dict[str, tuple[str, str]] = {
    "fastapi": ("fastapi", "webhook"),
    "prometheus_client": ("prometheus-client", "webhook"),
    "uvicorn": ("uvicorn", "webhook"),
    "starlette": ("starlette", "webhook"),
    "sushy": ("sushy", "server"),
    "openstack": ("openstacksdk", "server"),
    "kubernetes": ("kubernetes", "server"),
    "kubernetes_asyncio": ("kubernetes-asyncio", "gardener"),
    "opentelemetry": ("opentelemetry-sdk", "otel"),
}

#: Commands whose server needs another extra than the module table says (the codec server shares
#: uvicorn and starlette with the gateway but is installed by its own extra).
COMMAND_EXTRAS: dict[str, str] = {"codec": "codec", "webhook": "webhook"}


def missing_extra_message(module: str | None, command: str | None) -> str | None:
    """The line to print for a missing ``module``, or None when it is no optional dependency of ours."""
    top = (module or "").split(".")[0]
    if top not in MODULE_EXTRAS:
        return None
    dist, extra = MODULE_EXTRAS[top]
    group = (command or "").split(" ")[0]
    if group in COMMAND_EXTRAS and top in ("uvicorn", "starlette"):
        extra = COMMAND_EXTRAS[group]
    what = f"`apeiro {command}`" if command else "this command"
    return f"{what} needs {dist}, which is not installed: pip install 'apeiro-orchestrator[{extra}]'"
