"""The ``streamguard`` command line."""

from __future__ import annotations

import argparse
import sys

from streamguard.models import ConfigError, WeightsError, summary


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, WeightsError) as exc:
        print(f"streamguard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
