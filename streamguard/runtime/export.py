"""``streamguard export``: a detector -> engine file + manifest."""

from __future__ import annotations

from pathlib import Path

from streamguard.models.layers import DetectorModel
from streamguard.runtime.manifest import Manifest, sha256_of
from streamguard.runtime.onnx_backend import OPSET, export_onnx

FORMATS = ("onnx", "tensorrt")


def export_engine(model: DetectorModel, fmt: str, out: Path) -> Path:
    """Write ``out`` (an .onnx file; TensorRT engines are built from it and cached beside it) and its
    manifest ``out.with_suffix('.json')``. Returns the manifest path."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = out.with_suffix(".onnx")
    config = model.config
    if fmt == "tensorrt":
        from streamguard.runtime.tensorrt_backend import build_engine, require_tensorrt

        require_tensorrt()  # fail before the slow ONNX export where TensorRT cannot run
    outputs = export_onnx(model, out)
    backend = "onnxruntime"
    if fmt == "tensorrt":
        build_engine(out, config.input_size)
        backend = "tensorrt"
    weights = config.resolve(config.weights) if config.weights else None
    manifest = Manifest(
        detector=config.name,
        arch=config.arch,
        backend=backend,
        engine=out.name,
        input_size=config.input_size,
        mean=config.mean,
        std=config.std,
        threshold=config.threshold,
        outputs=outputs,
        opset=OPSET,
        source_weights=str(weights) if weights else None,
        source_weights_sha256=sha256_of(weights) if weights else None,
    )
    manifest_path = out.with_suffix(".json")
    manifest.write(manifest_path)
    return manifest_path
