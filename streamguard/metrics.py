"""Prometheus metrics. Per-stream counters are read at scrape time from the same objects as /api/stats,
so the two always agree; latencies are histograms in seconds (1 ms to 5 s)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from streamguard.pipeline import Pipeline

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.verdict_latency = Histogram(
            "streamguard_verdict_latency_seconds", "Frame received to verdict", ["stream"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_wait = Histogram(
            "streamguard_queue_wait_seconds", "Face crop ready to engine call start", buckets=LATENCY_BUCKETS, registry=r
        )
        self.inference = Histogram("streamguard_inference_seconds", "Engine time per batch", buckets=LATENCY_BUCKETS, registry=r)
        self.face_detection = Histogram(
            "streamguard_face_detection_seconds", "Face detection, tracking and cropping per frame", buckets=LATENCY_BUCKETS, registry=r
        )
        self.alerts = Counter("streamguard_alerts", "Track level changes, by the level entered", ["stream", "level"], registry=r)
        self.webhook_failures = Counter("streamguard_webhook_failures", "Webhook events given up after retries", registry=r)
        self.engine = Info("streamguard_engine", "The detector engine in use", registry=r)

    def watch(self, pipeline: Pipeline) -> None:
        self.registry.register(PipelineCollector(lambda: pipeline))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PipelineCollector(Collector):
    def __init__(self, pipeline: Callable[[], Pipeline]) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        p = self.pipeline()
        streams = list(p.streams.values())

        def per_stream(name: str, doc: str, value: Callable[..., float]) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=["stream"])
            for s in streams:
                family.add_metric([s.stream_id], value(s))
            return family

        yield per_stream("streamguard_frames_received", "Decoded frames received", lambda s: s.stats.frames_received)
        yield per_stream("streamguard_frames_processed", "Frames run through face detection", lambda s: s.processed)
        yield per_stream("streamguard_faces_detected", "Faces detected", lambda s: s.faces)
        yield per_stream("streamguard_reconnects", "Source reconnects after a loss", lambda s: s.stats.reconnects)
        yield per_stream("streamguard_stalls", "Source stalls noticed by the watchdog", lambda s: s.stats.stalls)
        dropped = CounterMetricFamily("streamguard_frames_dropped", "Frames or crops not processed, by reason", labels=["stream", "reason"])
        for s in streams:
            dropped.add_metric([s.stream_id, "overwritten"], s.stats.frames_dropped)
            dropped.add_metric([s.stream_id, "fps_cap"], s.skipped)
            dropped.add_metric([s.stream_id, "backpressure"], s.crops_dropped)
        yield dropped
        tracks = GaugeMetricFamily("streamguard_tracks", "Face tracks alive", labels=["stream"])
        for s in streams:
            tracks.add_metric([s.stream_id], len(s.smoothers))
        yield tracks
        yield GaugeMetricFamily("streamguard_active_streams", "Streams being watched", value=len(streams))
        yield GaugeMetricFamily("streamguard_queue_depth", "Face crops waiting for the engine", value=p.scheduler.depth)
        last = p.scheduler.last_batch
        yield GaugeMetricFamily("streamguard_batch_size_last", "Size of the last engine batch", value=last.size if last else 0)
