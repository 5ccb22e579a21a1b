"""ONNX export of the deployable network and the ONNX Runtime engine (the CPU default)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from streamguard.models.layers import DetectorModel
from streamguard.runtime.base import BackendUnavailable, Detector, EngineInfo
from streamguard.runtime.deploy import DeployModel

OPSET = 18
INPUT_NAME = "crops"


def export_onnx(model: DetectorModel, path: Path, opset: int = OPSET) -> tuple[str, ...]:
    """Write the fused detector with its normalization as ONNX with a dynamic batch axis; return output names."""
    net = DeployModel(model).eval()
    size = model.config.input_size
    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=4096)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(net.output_names),
            dynamic_shapes=({0: batch},),
            optimize=True,
            external_data=False,  # one self-contained file per engine
            verbose=False,
        )
    return net.output_names


class OnnxDetector(Detector):
    def __init__(self, path: Path, info: EngineInfo, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime") from exc
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle engine threads sleep instead of spinning: in a live service they share the cores with decoders
        # and face detection, which spinning would starve.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.info = info

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(batch)

    def infer(self, prepared: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, {INPUT_NAME: prepared})
        return {name: np.asarray(out, dtype=np.float32) for name, out in zip(self.output_names, outputs, strict=True)}
