"""TensorRT engine built from the exported ONNX (fp16), cached on disk next to the ONNX file.

TensorRT is imported lazily: where it is not installed, building this backend raises
``BackendUnavailable`` with the install hint, and everything else keeps working.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamguard.runtime.base import BackendUnavailable, Detector, EngineInfo
from streamguard.runtime.onnx_backend import INPUT_NAME


def require_tensorrt() -> Any:
    """The tensorrt module, or ``BackendUnavailable`` saying why it cannot be used here."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable("TensorRT is not installed: pip install 'streamguard[trt]' (needs an NVIDIA GPU)") from exc
    if not torch.cuda.is_available():
        raise BackendUnavailable("TensorRT needs a CUDA GPU")
    return tensorrt


def build_engine(onnx_path: Path, input_size: int, max_batch: int = 128, fp16: bool = True) -> Path:
    """Build (or reuse) a serialized engine for ``onnx_path``; the cache key is the ONNX file's hash and the options."""
    trt = require_tensorrt()
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    cache = onnx_path.with_name(f"{onnx_path.stem}.{digest}.b{max_batch}{'.fp16' if fp16 else ''}.plan")
    if cache.is_file():
        return cache
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailable(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    shape = (input_size, input_size, 3)
    profile.set_shape(INPUT_NAME, (1, *shape), (min(32, max_batch), *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable(f"TensorRT failed to build an engine from {onnx_path}")
    cache.write_bytes(bytes(serialized))
    return cache


class TensorRTDetector(Detector):
    def __init__(self, onnx_path: Path, info: EngineInfo, max_batch: int = 128) -> None:
        trt = require_tensorrt()
        plan = build_engine(onnx_path, info.input_size, max_batch)
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan.read_bytes())
        self.context = self.engine.create_execution_context()
        self.max_batch = max_batch
        self.output_names = list(info.outputs)
        self.info = info

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(batch).cuda(non_blocking=True)

    def infer(self, prepared: torch.Tensor) -> dict[str, np.ndarray]:
        if prepared.shape[0] > self.max_batch:
            parts = [self.infer(chunk) for chunk in prepared.split(self.max_batch)]
            return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}
        self.context.set_input_shape(INPUT_NAME, tuple(prepared.shape))
        self.context.set_tensor_address(INPUT_NAME, prepared.data_ptr())
        outputs = {}
        for name in self.output_names:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32, device=prepared.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outputs[name] = out
        stream = torch.cuda.current_stream()
        self.context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return {name: out.cpu().numpy() for name, out in outputs.items()}
