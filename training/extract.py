"""CLI: ``python -m training.extract SRC... --out DIR [--frames 20] [--size 317]`` (see ``training.faces``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from training.faces import ExtractOptions, LandmarkModelMissing, extract


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.extract", description=__doc__)
    parser.add_argument("sources", nargs="+", metavar="SRC", help="videos, photos, or folders of them (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (re-running skips items already done)")
    parser.add_argument("--frames", type=int, default=20, help="frames per video, evenly spaced")
    parser.add_argument("--size", type=int, default=317, help="crop side in pixels")
    parser.add_argument("--margin", type=float, default=1.3, help="crop side / face box side")
    parser.add_argument("--all-faces", action="store_true", help="photos: every face as its own item (default: largest)")
    parser.add_argument("--identities", type=Path, help="JSON mapping item id -> identity (default: identity = item id)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = ExtractOptions(frames=args.frames, size=args.size, margin=args.margin, all_faces=args.all_faces)
    try:
        identities = json.loads(args.identities.read_text()) if args.identities else None
        items = extract(args.sources, args.out, options, identities, progress=not args.quiet)
    except (OSError, ValueError, LandmarkModelMissing) as exc:
        print(f"extract: {exc}", file=sys.stderr)
        return 1
    frames = sum(len(i.frames) for i in items)
    print(f"{len(items)} items, {frames} face crops, {len({i.identity for i in items})} identities in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
