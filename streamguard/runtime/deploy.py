"""The deployable network: uint8 NHWC crops -> normalized -> fused detector -> named outputs."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from streamguard.models.layers import DetectorModel


class DeployModel(nn.Module):
    """Wraps a fused detector so that every backend (eager, compiled, ONNX, TensorRT) runs the same graph,
    normalization included. Outputs are a tuple in the order of ``output_names``."""

    mean: Tensor
    inv_std: Tensor

    def __init__(self, model: DetectorModel) -> None:
        super().__init__()
        config = model.config
        self.model = model if model.fused else model.fuse()
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("inv_std", 1 / (torch.tensor(config.std).view(1, 3, 1, 1) * 255))
        size = config.input_size
        with torch.no_grad():
            keys = self.model(torch.zeros(1, 3, size, size, device=self.mean.device)).keys()
        # "logit" is redundant with "prob" for callers; extras keep their names.
        self.output_names: tuple[str, ...] = ("prob", *sorted(k for k in keys if k not in ("prob", "logit")))

    def forward(self, crops: Tensor) -> tuple[Tensor, ...]:
        x = (crops.permute(0, 3, 1, 2).to(self.mean.dtype) - self.mean) * self.inv_std
        out = self.model(x.contiguous(memory_format=torch.channels_last))
        return tuple(out[name].float() for name in self.output_names)
