"""Observability end to end: the Grafana dashboard only asks for metrics a real service exposes, the exposition passes
promtool, /api/stats and /metrics read the same counters, and every dashboard query returns data from a real
Prometheus scraping a real service that plays the sample video.

promtool and prometheus come from Debian's package: ``apt-get update && apt-get install -y prometheus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from streamguard import assets
from tests.service_support import running_service
from tests.support import free_port

pytestmark = pytest.mark.skipif(bool(assets.missing()), reason="assets missing: run `streamguard assets fetch`")

DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"
DASHBOARD = DASHBOARDS / "streamguard.json"
APT_HINT = "install it with `apt-get update && apt-get install -y prometheus` (Debian package)"
GPU_ROW_PREFIX = "GPU (optional"  # the collapsed row holding the panels that need NVIDIA's dcgm-exporter
GRAFANA_INTERVALS = {"__rate_interval": "30s", "__interval": "5s", "__range": "1m"}
METRIC_NAME = re.compile(r"\bstreamguard_[a-zA-Z0-9_]+")
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def service_config() -> dict:
    return {"streams": [{"id": "cam", "url": str(assets.sample_video()), "fps": 5}], "scheduler": {"max_delay_ms": 5}}


# --- the dashboard


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict]) -> Iterator[dict]:
    """Every panel, rows included, and the panels folded inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def exprs(panel: dict) -> list[str]:
    return [t["expr"] for t in panel.get("targets", []) if t.get("expr")]


def is_gpu_panel(panel: dict) -> bool:
    return any("DCGM_" in e for e in exprs(panel))


def dashboard_queries(dashboard: dict) -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL with Grafana's variables resolved) for every target outside the optional GPU panels."""
    variables = {v["name"]: v.get("allValue") or ".*" for v in dashboard["templating"]["list"]}

    def resolve(expr: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            if name in GRAFANA_INTERVALS:
                return GRAFANA_INTERVALS[name]
            assert name in variables, f"unknown variable ${name} in {expr!r}"
            return variables[name]

        return VARIABLE.sub(sub, expr)

    return [
        (panel["title"], t["refId"], resolve(t["expr"]))
        for panel in all_panels(dashboard["panels"])
        if panel["type"] != "row" and not is_gpu_panel(panel)
        for t in panel["targets"]
    ]


# --- a real service that has processed the sample video


@dataclass(frozen=True)
class Sample:
    metrics_http: str  # GET /metrics
    metrics_now: str  # rendered in the same instant as stats_now, so the two must agree exactly
    stats_now: dict
    metrics_after_removal: str  # GET /metrics after DELETE /api/streams/cam


@functools.cache
def sample() -> Sample:
    """Run the service until it has published verdicts for the sample video; shared by the tests that only read it."""

    async def main() -> Sample:
        async with running_service(service_config()) as (url, service), aiohttp.ClientSession() as session:
            # Polled rather than read over SSE: an SSE handler whose client has left only notices at its next event, and
            # once the stream is removed there is none, so shutdown would wait out aiohttp's 60 s for it.
            async with asyncio.timeout(60):
                while service.pipeline.stats()["streams"]["cam"]["verdicts"] < 3:
                    await asyncio.sleep(0.2)
            async with session.get(f"{url}/metrics") as r:
                assert r.status == 200
                http = await r.text()
            now_metrics, now_stats = service.metrics.render().decode(), service.pipeline.stats()  # no await in between
            async with session.delete(f"{url}/api/streams/cam") as r:
                assert r.status == 204
            async with session.get(f"{url}/metrics") as r:
                after = await r.text()
            return Sample(http, now_metrics, now_stats, after)

    return asyncio.run(main())


def parse(text: str) -> tuple[dict[str, str], dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Family name -> type, and (sample name, sorted labels) -> value."""
    families: dict[str, str] = {}
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def test_dashboard_lints() -> None:
    dashboard = load_dashboard()
    panels = list(all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert exprs(panel), f"panel {panel['title']!r} has no target with an expr"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"panel {panel['title']!r} repeats a refId"

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["stream"]["includeAll"] and variables["stream"]["allValue"] == ".*"
    dashboard_queries(dashboard)  # every variable used is known

    # GPU panels are marked by living in the collapsed optional row, and query nothing but DCGM metrics.
    gpu_row = next(p for p in dashboard["panels"] if p["type"] == "row" and p["title"].startswith(GPU_ROW_PREFIX))
    assert gpu_row["collapsed"] and gpu_row["panels"] and all(is_gpu_panel(p) for p in gpu_row["panels"])
    assert [p for p in panels if is_gpu_panel(p)] == gpu_row["panels"]
    assert not any(METRIC_NAME.search(e) for p in gpu_row["panels"] for e in exprs(p))

    families, samples = parse(sample().metrics_http)
    exposed = {name for name, _ in samples}

    def exists(name: str) -> bool:
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and families.get(name.removesuffix(suffix)) == "histogram":
                return True
        return name in exposed  # counters as <name>_total, gauges and info metrics as they are

    referenced = {m for p in panels for e in exprs(p) for m in METRIC_NAME.findall(e)}
    referenced |= set(METRIC_NAME.findall(variables["stream"]["definition"]))
    assert len(referenced) >= 15
    missing = sorted(m for m in referenced if not exists(m))
    assert not missing, f"dashboard queries metrics the service does not expose: {missing}"


def test_metric_names_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(f"promtool not found: {APT_HINT}")
    text = sample().metrics_http
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    problems = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not problems, f"promtool check metrics (rc {result.returncode}):\n{problems}"


def test_api_stats_and_metrics_read_the_same_counters() -> None:
    snapshot = sample()
    _, samples = parse(snapshot.metrics_now)
    engine = snapshot.stats_now["engine"]
    cam = snapshot.stats_now["streams"]["cam"]

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    per_stream = {
        "streamguard_frames_received_total": "frames_received",
        "streamguard_frames_processed_total": "frames_processed",
        "streamguard_faces_detected_total": "faces_detected",
        "streamguard_verdicts_total": "verdicts",
        "streamguard_reconnects_total": "reconnects",
        "streamguard_stalls_total": "stalls",
        "streamguard_tracks": "tracks",
        "streamguard_verdict_latency_seconds_count": "verdicts",
    }
    for metric, key in per_stream.items():
        assert value(metric, stream="cam") == cam[key], (metric, key)
    for reason, key in {"overwritten": "frames_overwritten", "fps_cap": "frames_skipped", "backpressure": "crops_dropped"}.items():
        assert value("streamguard_frames_dropped_total", stream="cam", reason=reason) == cam[key], reason
    assert cam["verdicts"] >= 3 and cam["frames_processed"] > 0
    assert value("streamguard_queue_depth") == engine["queue_depth"]
    assert value("streamguard_batch_size_last") == engine["batch_size_last"] >= 1
    assert value("streamguard_active_streams") == len(snapshot.stats_now["streams"])
    info = {k: engine[k] for k in ("detector", "backend", "device")}
    assert value("streamguard_engine_info", **info) == 1
    # Rare events are series at zero from the start, not missing ones.
    assert all(("streamguard_alerts_total", (("level", lv), ("stream", "cam"))) in samples for lv in ("clear", "suspicious", "alert"))
    assert value("streamguard_webhook_failures_total") == 0


def test_a_removed_stream_takes_its_labelled_series_with_it() -> None:
    before, after = sample().metrics_now, sample().metrics_after_removal
    assert (
        'streamguard_alerts_total{level="alert",stream="cam"}' in before
        and 'streamguard_verdict_latency_seconds_count{stream="cam"}' in before
    )
    assert 'stream="cam"' not in after
    assert "streamguard_active_streams 0.0" in after and "streamguard_webhook_failures_total 0.0" in after


def test_provisioning_and_compose_point_at_the_shipped_files() -> None:
    scrape = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "streamguard")
    assert job["scrape_interval"] == "5s" and job["static_configs"][0]["targets"] == ["localhost:8080"]
    datasource = yaml.safe_load((DASHBOARDS / "provisioning/datasources/prometheus.yaml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://localhost:9090"
    provider = yaml.safe_load((DASHBOARDS / "provisioning/dashboards/streamguard.yaml").read_text())["providers"][0]

    compose = yaml.safe_load((DASHBOARDS / "compose.yaml").read_text())
    mounts: dict[str, str] = {}
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (DASHBOARDS / source).exists(), f"compose mounts a missing file: {source}"
                mounts[source.removeprefix("./")] = target
    assert mounts["prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert Path(mounts["streamguard.json"]).parent == Path(provider["options"]["path"])
    assert mounts["provisioning/datasources"] == "/etc/grafana/provisioning/datasources"
    assert mounts["provisioning/dashboards"] == "/etc/grafana/provisioning/dashboards"
    assert "--web.listen-address=:9090" in compose["services"]["prometheus"]["command"]


# --- a real Prometheus


@contextlib.contextmanager
def prometheus_server(binary: str, workdir: Path, target: str) -> Iterator[tuple[str, Path]]:
    """Prometheus scraping ``target`` every second with the shipped scrape config; yields its URL and its log file."""
    shipped = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "streamguard")
    job.update(scrape_interval="1s", static_configs=[{"targets": [target]}])
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def instant_query(session: aiohttp.ClientSession, prometheus: str, query: str) -> list[float]:
    async with session.get(f"{prometheus}/api/v1/query", params={"query": query}) as r:
        body = await r.json()
    assert body["status"] == "success", f"{query!r}: {body.get('error')}"
    data = body["data"]
    if data["resultType"] == "scalar":
        return [float(data["result"][1])]
    return [float(series["value"][1]) for series in data["result"]]


def log_tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-15:])


def test_every_dashboard_query_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(f"prometheus server binary not found: {APT_HINT}")
    queries = dashboard_queries(load_dashboard())

    async def main() -> None:
        timeout = aiohttp.ClientTimeout(total=20)
        async with running_service(service_config()) as (url, _), aiohttp.ClientSession(timeout=timeout) as session:
            with prometheus_server(binary, tmp_path, url.removeprefix("http://")) as (prometheus, log):
                deadline = time.monotonic() + 60
                while True:  # ready, then several successful scrapes of the service
                    with contextlib.suppress(aiohttp.ClientError, AssertionError):
                        if (await instant_query(session, prometheus, 'sum_over_time(up{job="streamguard"}[1m])') or [0])[0] >= 4:
                            break
                    assert time.monotonic() < deadline, f"Prometheus did not scrape the service 4 times:\n{log_tail(log)}"
                    await asyncio.sleep(0.5)
                while True:  # rate() and histogram_quantile() need a few samples in their windows
                    empty = []
                    for title, ref, query in queries:
                        values = await instant_query(session, prometheus, query)
                        if not any(math.isfinite(v) for v in values):
                            empty.append(f"{title} [{ref}]: {query} -> {values}")
                    if not empty or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(1.0)
                assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

    asyncio.run(main())
