"""CUDA engine: ``torch.compile`` plus one CUDA graph per batch size; a batch is padded up to the next size."""

from __future__ import annotations

import bisect

import torch
from torch import Tensor

from streamguard.models.layers import DetectorModel
from streamguard.runtime.base import BackendUnavailable
from streamguard.runtime.torch_backend import TorchDetector

DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)


class CompiledDetector(TorchDetector):
    backend = "compiled"

    def __init__(
        self,
        model: DetectorModel,
        device: str = "cuda",
        dtype: torch.dtype = torch.float16,
        batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
    ) -> None:
        if not torch.cuda.is_available():
            raise BackendUnavailable("the compiled backend needs a CUDA GPU (use torch or onnxruntime on CPU)")
        super().__init__(model, device, dtype)
        self.batch_sizes = tuple(sorted(batch_sizes))
        self.compiled = torch.compile(self.net, mode="max-autotune-no-cudagraphs", dynamic=False)
        size = self.info.input_size
        self.inputs: dict[int, Tensor] = {}
        self.outputs: dict[int, tuple[Tensor, ...]] = {}
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        with torch.inference_mode():
            for n in self.batch_sizes:
                static = torch.zeros(n, size, size, 3, dtype=torch.uint8, device=self.device)
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):  # compile and warm up outside the graph
                        self.compiled(static)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self.outputs[n] = self.compiled(static)
                self.inputs[n], self.graphs[n] = static, graph

    @torch.inference_mode()
    def forward(self, crops: Tensor) -> tuple[Tensor, ...]:
        largest = self.batch_sizes[-1]
        if crops.shape[0] > largest:  # larger batches run as chunks of the largest captured size
            parts = [self.forward(chunk) for chunk in crops.split(largest)]
            return tuple(torch.cat(outs) for outs in zip(*parts, strict=True))
        n = crops.shape[0]
        size = self.batch_sizes[bisect.bisect_left(self.batch_sizes, n)]
        self.inputs[size][:n].copy_(crops)
        self.graphs[size].replay()
        return tuple(out[:n].clone() for out in self.outputs[size])
