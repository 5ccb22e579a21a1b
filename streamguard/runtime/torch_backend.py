"""Eager PyTorch engine: fp32 on CPU, fp16 (or bf16) on CUDA, channels_last."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from streamguard.models.layers import DetectorModel
from streamguard.runtime.base import BackendUnavailable, Detector, EngineInfo
from streamguard.runtime.deploy import DeployModel


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchDetector(Detector):
    backend = "torch"

    def __init__(self, model: DetectorModel, device: str | None = None, dtype: torch.dtype | None = None) -> None:
        device = device or default_device()
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable(f"device {device!r} asked for, but no CUDA GPU is available")
        self.device = torch.device(device)
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.net = DeployModel(model).to(self.device, self.dtype).to(memory_format=torch.channels_last).eval()
        config = model.config
        self.info = EngineInfo(
            detector=config.name,
            backend=self.backend,
            device=str(self.device),
            input_size=config.input_size,
            mean=config.mean,
            std=config.std,
            threshold=config.threshold,
            outputs=self.net.output_names,
        )

    def prepare(self, batch: np.ndarray) -> Tensor:
        return torch.from_numpy(batch).to(self.device, non_blocking=True)

    @torch.inference_mode()
    def forward(self, crops: Tensor) -> tuple[Tensor, ...]:
        return self.net(crops)

    def infer(self, prepared: Tensor) -> dict[str, np.ndarray]:
        outputs = self.forward(prepared)
        return {name: t.float().cpu().numpy() for name, t in zip(self.net.output_names, outputs, strict=True)}
