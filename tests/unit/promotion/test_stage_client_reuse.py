"""Stage clients share a TLS context per CA file and parse a kubeconfig once per content."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest

from activities import konfidence_stages
from activities.konfidence_stages import KubeTarget
from definitions.promotion import Target

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: c
contexts: [{{name: c, context: {{cluster: k, user: u}}}}]
clusters: [{{name: k, cluster: {{server: "https://127.0.0.1:1/", certificate-authority: "{ca}"}}}}]
users: [{{name: u, user: {{token: secret-token}}}}]
"""


def test_stage_targets_reuse_tls_context_and_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built: list[Any] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(args or kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    parsed: list[str] = []
    real_parse = konfidence_stages.parse_yaml
    monkeypatch.setattr(konfidence_stages, "parse_yaml", lambda text: parsed.append(text) or real_parse(text))
    konfidence_stages._ssl_context_for.cache_clear()
    konfidence_stages._parse_kubeconfig.cache_clear()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(certifi.where()).read_bytes())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(ca=ca))

    targets = [KubeTarget(Target(stage=f"s{i}", kubeconfig=str(kubeconfig))) for i in range(3)]
    assert len(built) == 1, f"{len(built)} TLS contexts built for 3 Stage clients"
    assert len(parsed) == 1, f"kubeconfig parsed {len(parsed)} times for 3 Stage clients"
    assert targets[0].server == "https://127.0.0.1:1"
    assert targets[2].client.headers["Authorization"] == "Bearer secret-token"

    st = ca.stat()  # a rotated CA file (new mtime) gets a new context
    os.utime(ca, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    KubeTarget(Target(stage="s3", kubeconfig=str(kubeconfig)))
    assert len(built) == 2
    konfidence_stages._ssl_context_for.cache_clear()
    konfidence_stages._parse_kubeconfig.cache_clear()
