"""Prometheus metrics. Per-stream counters are read at scrape time from the same objects as /api/stats,
so the two always agree; latencies are histograms in seconds (1 ms to 5 s).

Labels are bounded: ``stream`` (the live streams only: a removed stream's series go with it), ``level`` and
``reason`` (fixed sets). Every counter a dashboard plots exists from the first scrape after its stream appears,
at zero if nothing happened yet, so rare events (alerts, reconnects, webhook failures) read as 0, not as "no data".

Decode time is not measured: decoding runs inside each ingest source's worker thread and a ``Frame`` carries no
decode timing, so it would need a change in every source (file, RTSP, WebRTC), not here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streamguard.contracts import Level

if TYPE_CHECKING:
    from streamguard.pipeline import Pipeline

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LEVELS = tuple(level.value for level in Level)
DROP_REASONS = ("overwritten", "fps_cap", "backpressure")


class Metrics:
    """The service's registry. Histograms and the alert counter are observed by the pipeline as things happen;
    everything else is read from the pipeline at scrape time by :class:`PipelineCollector`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.verdict_latency = Histogram(
            "streamguard_verdict_latency_seconds", "Frame received to verdict, per face", ["stream"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_wait = Histogram(
            "streamguard_queue_wait_seconds", "Face crop ready to engine call start", buckets=LATENCY_BUCKETS, registry=r
        )
        self.inference = Histogram("streamguard_inference_seconds", "Engine time per batch", buckets=LATENCY_BUCKETS, registry=r)
        self.face_detection = Histogram(
            "streamguard_face_detection_seconds", "Face detection, tracking and cropping per frame", buckets=LATENCY_BUCKETS, registry=r
        )
        self.alerts = Counter(
            "streamguard_alerts", "Track level changes, by the level entered (clear: a track calmed down)", ["stream", "level"], registry=r
        )
        self.webhook_failures = Counter(
            "streamguard_webhook_failures", "Webhook events not delivered: queue full, rejected (4xx) or retries exhausted", registry=r
        )
        self.engine = Info("streamguard_engine", "The detector engine in use", registry=r)
        self._pipeline: Pipeline | None = None
        self._labelled: set[str] = set()  # streams whose labelled children exist in the counters above

    def watch(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.registry.register(PipelineCollector(lambda: pipeline))

    def render(self) -> bytes:
        self._sync_stream_labels()
        return generate_latest(self.registry)

    def _sync_stream_labels(self) -> None:
        """Give every live stream an alert counter per level (at 0 until one happens), and drop the labelled series of
        streams that are gone, so the label set follows the live streams instead of growing with every id ever seen."""
        live = set(self._pipeline.streams) if self._pipeline is not None else set()
        for stream in live - self._labelled:
            for level in LEVELS:
                self.alerts.labels(stream, level)
        for stream in self._labelled - live:
            for level in LEVELS:
                with contextlib.suppress(KeyError):
                    self.alerts.remove(stream, level)
            with contextlib.suppress(KeyError):  # a stream that never had a verdict has no histogram
                self.verdict_latency.remove(stream)
        self._labelled = live


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
        yield per_stream("streamguard_verdicts", "Verdicts (one per face crop scored by the engine)", lambda s: s.verdicts)
        yield per_stream("streamguard_reconnects", "Source reconnects after a loss", lambda s: s.stats.reconnects)
        yield per_stream("streamguard_stalls", "Source stalls noticed by the watchdog", lambda s: s.stats.stalls)
        dropped = CounterMetricFamily(
            "streamguard_frames_dropped",
            "Frames not processed, by reason: overwritten in the latest-frame slot, fps_cap (skipped above the stream's fps cap), "
            "backpressure (face crops dropped by the batch scheduler)",
            labels=["stream", "reason"],
        )
        for s in streams:
            for reason, value in zip(DROP_REASONS, (s.stats.frames_dropped, s.skipped, s.crops_dropped), strict=True):
                dropped.add_metric([s.stream_id, reason], value)
        yield dropped
        tracks = GaugeMetricFamily("streamguard_tracks", "Face tracks alive", labels=["stream"])
        for s in streams:
            tracks.add_metric([s.stream_id], len(s.smoothers))
        yield tracks
        yield GaugeMetricFamily("streamguard_active_streams", "Streams being watched", value=len(streams))
        yield GaugeMetricFamily("streamguard_queue_depth", "Face crops waiting for the engine", value=p.scheduler.depth)
        last = p.scheduler.last_batch
        yield GaugeMetricFamily("streamguard_batch_size_last", "Size of the last engine batch", value=last.size if last else 0)
