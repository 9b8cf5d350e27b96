"""A real Prometheus (Debian package ``prometheus``) scraping the sample workload, as a landscape part.

Metric gates query it over the HTTP API like they would a production Prometheus. The sample workload
(:mod:`landscape.sample_app`) starts first; Prometheus scrapes it every ``scrape_interval`` with its
TSDB under the state directory. ``endpoints``: ``url`` (Prometheus), ``sample`` (the workload; POST
``/error-rate`` to raise its error ratio). ``env()``: ``APEIRO_PROMETHEUS_URL``, ``APEIRO_SAMPLE_APP_URL``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import yaml

from landscape.part import Part
from landscape.process import LandscapeError, ManagedProcess, find_executable, free_port

#: The error ratio of the sample workload over the last few scrapes (what the demo's metric gate checks).
ERROR_RATIO_QUERY = 'sum(rate(sample_requests_total{code=~"5.."}[5s])) / sum(rate(sample_requests_total[5s]))'


class Prometheus(Part):
    name = "prometheus"

    def __init__(self, scrape_interval: str = "1s") -> None:
        super().__init__()
        self.scrape_interval = scrape_interval

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            binary = find_executable("prometheus")
        except LandscapeError as exc:
            raise LandscapeError(f"{exc}; on Debian: apt-get install -y prometheus") from None
        repo_root = Path(__file__).resolve().parents[1]
        sample_port = free_port()
        sample = ManagedProcess(
            "sample workload",
            [sys.executable, "-m", "landscape.sample_app", "--port", str(sample_port)],
            state_dir / "sample-app.log",
            env={"PYTHONPATH": str(repo_root)},
            cwd=repo_root,
        )
        self.processes.append(sample)
        sample_url = f"http://127.0.0.1:{sample_port}"
        sample.start(lambda: httpx.get(f"{sample_url}/healthz", timeout=1.0).status_code == 200)
        port = free_port()
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": [{"job_name": "sample", "static_configs": [{"targets": [f"127.0.0.1:{sample_port}"]}]}],
        }
        config_path = state_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        url = f"http://127.0.0.1:{port}"
        proc = ManagedProcess(
            "prometheus",
            [
                str(binary),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={state_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1d",
            ],
            state_dir / "prometheus.log",
            cwd=state_dir,
        )
        self.processes.append(proc)
        try:
            proc.start(lambda: httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200, timeout=30)
        except LandscapeError:
            self.stop()
            raise
        self.endpoints = {"url": url, "sample": sample_url}
        self._wait_for_first_scrape(url, proc.log_path)

    def _wait_for_first_scrape(self, url: str, log: Path, timeout: float = 30.0) -> None:
        """Metric gates answer "no data" until the sample workload has been scraped twice (rates need two)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                body = httpx.get(
                    f"{url}/api/v1/query", params={"query": "count_over_time(up{job='sample'}[1m])"}, timeout=2.0
                ).json()
                result = body.get("data", {}).get("result") or []
                if result and float(result[0]["value"][1]) >= 2:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        self.stop()
        raise LandscapeError(f"prometheus never scraped the sample workload within {timeout:.0f}s; see {log}")

    def set_error_rate(self, rate: float) -> None:
        httpx.post(f"{self.endpoints['sample']}/error-rate", json={"rate": rate}, timeout=5.0).raise_for_status()

    def env(self) -> dict[str, str]:
        if not self.endpoints:
            return {}
        return {"APEIRO_PROMETHEUS_URL": self.endpoints["url"], "APEIRO_SAMPLE_APP_URL": self.endpoints["sample"]}

    def pipeline_inputs(self) -> dict[str, object]:
        return {"prometheusUrl": self.endpoints.get("url", "")} if self.endpoints else {}
