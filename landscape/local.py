"""The local landscape `apeiro dev up` and `make demo` start: every part, in dependency order.

Each lifecycle that needs a peer adds its part here.
"""

from __future__ import annotations

from pathlib import Path

from landscape.kubeapi.part import DEFAULT_PLUGINS, KubeApiServer
from landscape.landscape import Landscape
from landscape.ocm_example import ocm_parts
from landscape.part import Part
from landscape.process import free_port, port_open
from landscape.prometheus import Prometheus
from landscape.redfish import server_parts
from landscape.temporal import TemporalDevServer


def local_parts(*, ui_port: int | None = None) -> list[Part]:
    if ui_port is None:
        ui_port = 8233 if not port_open("127.0.0.1", 8233) else free_port()
    # KubeApiServer: the garden (simulated Gardener + IronCore/Konfidence kinds), seeded with the
    # project namespace garden-edge, CloudProfile "local" and a credentials binding; its env()
    # gives workers APEIRO_GARDEN_KUBECONFIG.
    # ocm_parts: source and site OCI registries (the site one with TLS + htpasswd) and the example
    # component pushed to the source, with the site's signing key.
    # server_parts: the OS report-in relay, the emulated site BMC (sushy-tools + BIOS/firmware sidecar)
    # with 4 systems, and the image server with the Garden Linux image and its SHA-256.
    # The garden API also runs the simulated Konfidence Stage controller and the simulated IronCore
    # metal-operator (both on CRDs); Prometheus (Debian package) scrapes a sample workload the
    # promotion's metric gate queries.
    temporal = TemporalDevServer(ui_port=ui_port)
    return [
        temporal,
        KubeApiServer(plugins=(*DEFAULT_PLUGINS, "landscape.konfidence", "landscape.metal_operator")),
        Prometheus(),
        *server_parts(temporal, systems=4),
        *ocm_parts(),
    ]


def local_landscape(state_dir: Path | None = None, *, ui_port: int | None = None) -> Landscape:
    return Landscape(local_parts(ui_port=ui_port), state_dir=state_dir)
