"""Engine manifests: a JSON file beside each exported engine that is enough to load and use it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from streamguard.runtime.base import Detector, EngineInfo

MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """A manifest is missing, unreadable or points at a missing engine file."""


@dataclass
class Manifest:
    detector: str
    arch: str
    backend: str  # onnxruntime | tensorrt
    engine: str  # engine file, relative to the manifest
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    threshold: float
    outputs: tuple[str, ...]
    opset: int
    source_weights: str | None
    source_weights_sha256: str | None
    version: int = MANIFEST_VERSION

    def engine_info(self, device: str) -> EngineInfo:
        return EngineInfo(self.detector, self.backend, device, self.input_size, self.mean, self.std, self.threshold, self.outputs)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(Path(path).read_text())
            data["mean"], data["std"], data["outputs"] = tuple(data["mean"]), tuple(data["std"]), tuple(data["outputs"])
            manifest = cls(**data)
        except FileNotFoundError as exc:
            raise ManifestError(f"{path}: manifest not found") from exc
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ManifestError(f"{path}: not a StreamGuard engine manifest ({exc})") from exc
        if manifest.version != MANIFEST_VERSION:
            raise ManifestError(f"{path}: manifest version {manifest.version}, this StreamGuard reads {MANIFEST_VERSION}")
        return manifest


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_engine(manifest_path: str | Path, threads: int | None = None) -> Detector:
    """Load an exported engine from its manifest alone (no model code or config needed)."""
    manifest_path = Path(manifest_path)
    manifest = Manifest.read(manifest_path)
    engine = manifest_path.parent / manifest.engine
    if not engine.is_file():
        raise ManifestError(f"{manifest_path}: engine file {engine} not found")
    if manifest.backend == "onnxruntime":
        from streamguard.runtime.onnx_backend import OnnxDetector

        return OnnxDetector(engine, manifest.engine_info("cpu"), threads)
    if manifest.backend == "tensorrt":
        from streamguard.runtime.tensorrt_backend import TensorRTDetector

        return TensorRTDetector(engine, manifest.engine_info("cuda"))
    raise ManifestError(f"{manifest_path}: unknown backend {manifest.backend!r}")
