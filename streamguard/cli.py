"""The ``streamguard`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamguard.models import ConfigError, WeightsError, build_detector, summary, variant_names
from streamguard.runtime import BackendUnavailable, ManifestError, bench
from streamguard.runtime.export import FORMATS, export_engine


def export_command(args: argparse.Namespace) -> int:
    overrides = {"weights": str(args.weights.resolve())} if args.weights else {}
    model = build_detector(args.detector, **overrides)
    manifest = export_engine(model, args.format, args.out)
    print(f"wrote {args.out.with_suffix('.onnx')} and {manifest}")
    return 0


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, WeightsError, ManifestError, BackendUnavailable) as exc:
        print(f"streamguard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
