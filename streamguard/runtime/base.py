"""The one interface every engine backend implements: uint8 NHWC face crops in, probabilities out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (no GPU, package not installed); the message says what is missing."""


@dataclass(frozen=True)
class EngineInfo:
    """What a caller needs to know about an engine: which detector, where it runs, how to read its scores."""

    detector: str
    backend: str
    device: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    threshold: float
    outputs: tuple[str, ...] = ("prob",)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DetectorOutput:
    prob: np.ndarray  # (N,) float32: probability that each face is synthetic
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # heatmap, consistency, fidelity where the model has them


class Detector(ABC):
    """A compiled or eager detector engine. Normalization happens inside, on the engine's device."""

    info: EngineInfo

    @abstractmethod
    def prepare(self, batch: np.ndarray) -> Any:
        """Move a checked uint8 NHWC batch to the engine's device, in the engine's input form."""

    @abstractmethod
    def infer(self, prepared: Any) -> dict[str, np.ndarray]:
        """Run prepared input; return every output by name, ``prob`` included, as float32 arrays."""

    def run(self, batch: np.ndarray) -> DetectorOutput:
        check_batch(batch, self.info.input_size)
        outputs = self.infer(self.prepare(batch))
        prob = outputs.pop("prob")
        return DetectorOutput(prob=prob, extras=outputs)


def check_batch(batch: np.ndarray, size: int) -> None:
    if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy array of face crops, got {getattr(batch, 'dtype', type(batch).__name__)}")
    if batch.ndim != 4 or batch.shape[1:] != (size, size, 3) or batch.shape[0] == 0:
        raise ValueError(f"expected crops of shape (N, {size}, {size}, 3) with N >= 1, got {batch.shape}")
