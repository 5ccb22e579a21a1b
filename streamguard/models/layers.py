"""Small building blocks shared by the detectors."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from streamguard.models.config import DetectorConfig


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation (SiLU by default); the BN folds away in deploy mode."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.SiLU() if act else nn.Identity(),
        )


class Fusable(nn.Module):
    """A block with a deploy form: ``fuse()`` replaces training branches by equivalent layers, in place."""

    def fuse(self) -> None:
        raise NotImplementedError


class DetectorModel(nn.Module):
    """Base of every detector: ``forward(x) -> dict`` and ``fuse()`` for deployment."""

    Config: ClassVar[type[DetectorConfig]] = DetectorConfig  # each architecture names its config class

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.fused = False

    @staticmethod
    def outputs(logit: Tensor, **extras: Tensor) -> dict[str, Tensor]:
        """The output contract: ``logit`` and ``prob`` of "fake" per image, plus head-specific maps."""
        return {"logit": logit, "prob": torch.sigmoid(logit), **extras}

    @torch.no_grad()
    def fuse(self) -> DetectorModel:
        """Deploy mode: re-parameterize fusable blocks, then fold BatchNorms into convs. In place; eval mode."""
        from streamguard.models.fusing import fold_batchnorms

        self.eval()
        for module in list(self.modules()):
            if isinstance(module, Fusable):
                module.fuse()
        size = self.config.input_size
        fold_batchnorms(self, torch.zeros(1, 3, size, size, device=next(self.parameters()).device))
        self.fused = True
        return self
