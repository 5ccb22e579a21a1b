"""Soak benchmark: N simultaneous live streams on this machine with the configured (CPU default) engine.

Each stream is a real RTSP feed (GStreamer's RTSP server on loopback, playing a 640x360 face video at real time)
ingested by the real service pipeline: decode, face detection and tracking, cross-stream batching, the engine,
smoothing. Reports per stream the processed and skipped frames per second and, over all verdicts, the
frame-received-to-verdict latency percentiles.

    python benchmarks/soak.py [--streams 1 2 4] [--seconds 30] [--fps 10] [--source-fps 30] [--json OUT]

Needs Debian's GStreamer RTSP server (see README) and `streamguard assets fetch`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support (the RTSP test server)

from streamguard import assets
from streamguard.alerts import AlertHub
from streamguard.config import parse_config
from streamguard.engine import open_engine
from streamguard.faces import BlazeFaceDetector, FaceStage
from streamguard.metrics import Metrics
from streamguard.pipeline import Pipeline
from tests.support import RtspServer, free_port, gst_rtsp_problem


def encode_ts(src: Path, dst: Path, fps: int) -> Path:
    """Re-encode the sample video as H.264 MPEG-TS at ``fps`` (a call-like 30 fps by default), 640x360."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "tune": "zerolatency", "g": str(fps)})
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        src_fps = float(inp.streams.video[0].average_rate or 24)
        n = 0
        for frame in inp.decode(video=0):
            # Repeat frames to reach the target rate; time stays real (duration unchanged).
            while n / fps <= (frame.pts * frame.time_base if frame.pts is not None else n / src_fps):
                image = frame.reformat(width=640, height=360, format="yuv420p")
                image.pts, image.time_base = n, Fraction(1, fps)
                out.mux(stream.encode(image))
                n += 1
        out.mux(stream.encode(None))
    return dst


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else float("nan")


async def soak(url: str, streams: int, seconds: float, fps: float, warmup_s: float = 5.0) -> dict:
    config = parse_config({"streams": [{"id": f"cam{i}", "url": url, "fps": fps} for i in range(streams)]})
    engine = open_engine(config.detector)
    with BlazeFaceDetector() as detector:
        metrics = Metrics()
        pipeline = Pipeline(config, engine, FaceStage(engine.info.input_size, detector), AlertHub(config.alerts), metrics)
        await pipeline.start()
        for stream in config.streams:
            pipeline.add_configured(stream)
        subscription = pipeline.alerts.subscribe()
        await asyncio.sleep(warmup_s)
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        before = {
            s.stream_id: (s.stats.frames_received, s.processed, s.skipped + s.stats.frames_dropped) for s in pipeline.streams.values()
        }
        latencies: list[float] = []
        start = time.monotonic()
        while (left := seconds - (time.monotonic() - start)) > 0:
            try:
                event = await asyncio.wait_for(subscription.queue.get(), left)
            except TimeoutError:
                break
            latencies.append(event["latency_ms"]["total"])
        elapsed = time.monotonic() - start
        per_stream = {}
        for s in pipeline.streams.values():
            r0, p0, k0 = before[s.stream_id]
            per_stream[s.stream_id] = {
                "input_fps": (s.stats.frames_received - r0) / elapsed,
                "processed_fps": (s.processed - p0) / elapsed,
                "skipped_fps": (s.skipped + s.stats.frames_dropped - k0) / elapsed,
            }
        await pipeline.close()
    return {
        "streams": streams,
        "seconds": elapsed,
        "verdicts": len(latencies),
        "latency_ms": {f"p{q}": percentile(latencies, q) for q in (50, 95, 99)},
        "per_stream": per_stream,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run (after 5 s warm-up)")
    parser.add_argument("--fps", type=float, default=10.0, help="processed frames per second per stream (the cap)")
    parser.add_argument("--source-fps", type=int, default=30, help="frame rate of the served video")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    problem = gst_rtsp_problem()
    if problem or assets.missing():
        print(f"soak: cannot run: {problem or 'assets missing: run `streamguard assets fetch`'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        clip = encode_ts(assets.sample_video(), Path(tmp) / "call.ts", args.source_fps)
        server = RtspServer(clip, free_port())
        server.start()
        try:
            runs = [asyncio.run(soak(server.url, n, args.seconds, args.fps)) for n in args.streams]
        finally:
            server.close()
    machine = f"{platform.processor() or platform.machine()}, CPU, {len(__import__('os').sched_getaffinity(0))} cores"
    print(f"machine: {machine}; source 640x360 @ {args.source_fps} fps over RTSP; cap {args.fps:g} fps per stream")
    print(f"{'streams':>7} {'input fps':>9} {'processed fps':>13} {'skipped fps':>11} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for run in runs:
        rows = run["per_stream"].values()
        mean = {k: statistics.fmean(r[k] for r in rows) for k in ("input_fps", "processed_fps", "skipped_fps")}
        lat = run["latency_ms"]
        print(
            f"{run['streams']:>7} {mean['input_fps']:>9.1f} {mean['processed_fps']:>13.1f} {mean['skipped_fps']:>11.1f} "
            f"{lat['p50']:>7.1f} {lat['p95']:>7.1f} {lat['p99']:>7.1f}"
        )
    print("fps columns: mean per stream; latency: frame received (decoded) -> verdict, over all verdicts")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"machine": machine, "source_fps": args.source_fps, "fps_cap": args.fps, "runs": runs}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
