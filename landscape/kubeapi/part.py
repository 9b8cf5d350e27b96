"""The API server as a landscape part: a uvicorn subprocess on a free loopback port."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from landscape.part import Part
from landscape.process import LandscapeError, free_port

DEFAULT_PLUGINS = ("landscape.kubeapi.extra_kinds", "landscape.gardener")


class KubeApiServer(Part):
    """Serves the Kubernetes-style API with plugins (kinds + simulated controllers) installed.

    ``endpoints["url"]`` is the base URL; ``endpoints["kubeconfig"]`` a kubeconfig file for it
    (written into the state directory at start, or anywhere with :meth:`write_kubeconfig`).
    """

    name = "kubeapi"

    def __init__(
        self,
        plugins: tuple[str, ...] = DEFAULT_PLUGINS,
        settings: dict[str, str] | None = None,
        port: int | None = None,
        bookmark_interval: float = 5.0,
        seed_garden: bool = True,
    ) -> None:
        super().__init__()
        self.plugins = plugins
        self.seed_garden = seed_garden and "landscape.gardener" in plugins
        #: Default clock: 300 simulated s per real s (a create takes ~2 s, an upgrade step ~1.2 s).
        self.settings = {"gardener.speed": "300", **(settings or {})}
        self.port = port
        self.bookmark_interval = bookmark_interval

    @property
    def url(self) -> str:
        return self.endpoints["url"]

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        argv = [
            sys.executable,
            "-m",
            "landscape.kubeapi",
            "--port",
            str(self.port),
            "--bookmark-interval",
            str(self.bookmark_interval),
        ]
        for plugin in self.plugins:
            argv += ["--plugin", plugin]
        for key, value in self.settings.items():
            argv += ["--set", f"{key}={value}"]
        url = self.start_python_server("kube API server", argv, state_dir / "kubeapi.log", self.port)
        try:
            self.endpoints = {"url": url}
            self.endpoints["kubeconfig"] = str(self.write_kubeconfig(state_dir / "kubeconfig"))
            if self.seed_garden:
                from landscape.gardener import samples

                samples.seed(url)  # project namespace garden-edge, CloudProfile "local", credentials binding
        except Exception as exc:
            self.stop()  # the landscape only stops parts that started; do not leave the process behind
            raise LandscapeError(f"kube API server started but could not be prepared: {exc}") from exc

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig both `kubernetes` and `kubernetes_asyncio` load; the token is not checked."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "apeiro",
            "clusters": [{"name": "apeiro", "cluster": {"server": self.endpoints["url"]}}],
            "users": [{"name": "apeiro", "user": {"token": "apeiro-landscape"}}],
            "contexts": [
                {"name": "apeiro", "context": {"cluster": "apeiro", "user": "apeiro", "namespace": namespace}}
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        return path

    def env(self) -> dict[str, str]:
        if not self.endpoints:
            return {}
        return {
            "APEIRO_GARDEN_KUBECONFIG": self.endpoints["kubeconfig"],
            "APEIRO_KUBEAPI_URL": self.endpoints["url"],
        }
