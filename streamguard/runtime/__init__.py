"""Engine backends behind one ``Detector`` interface, and the factory that picks one."""

from __future__ import annotations

import tempfile
from pathlib import Path

from streamguard.models.layers import DetectorModel
from streamguard.runtime.base import BackendUnavailable, Detector, DetectorOutput, EngineInfo
from streamguard.runtime.manifest import ManifestError, load_engine

BACKENDS = ("torch", "compiled", "onnxruntime", "tensorrt")

__all__ = ["BACKENDS", "BackendUnavailable", "Detector", "DetectorOutput", "EngineInfo", "ManifestError", "create_engine", "load_engine"]


def create_engine(model: DetectorModel, backend: str, device: str | None = None, workdir: Path | None = None) -> Detector:
    """Wrap a detector model in a backend. ONNX Runtime and TensorRT export into ``workdir`` (a temp dir by default)."""
    if backend == "torch":
        from streamguard.runtime.torch_backend import TorchDetector

        return TorchDetector(model, device)
    if backend == "compiled":
        from streamguard.runtime.compiled import CompiledDetector

        return CompiledDetector(model, device or "cuda")
    if backend in ("onnxruntime", "tensorrt"):
        from streamguard.runtime.export import export_engine

        workdir = workdir or Path(tempfile.mkdtemp(prefix="streamguard-"))
        fmt = "onnx" if backend == "onnxruntime" else "tensorrt"
        return load_engine(export_engine(model, fmt, workdir / f"{model.config.name}.onnx"))
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
