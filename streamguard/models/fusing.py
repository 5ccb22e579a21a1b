"""Deploy-time folding of BatchNorm into the convolution that feeds it."""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def fold_batchnorms(model: nn.Module, example: Tensor) -> int:
    """Fold every BatchNorm2d whose only input is a Conv2d's output into that conv.

    Pairs are found by running ``example`` once with hooks (so any architecture works,
    timm backbones included); a conv or BN called more than once is left alone. timm's
    ``BatchNormAct2d`` keeps its activation. Returns the number of folded pairs.
    """
    model.eval()
    produced_by: dict[int, nn.Conv2d] = {}
    keep_alive: list[Tensor] = []
    calls: dict[nn.Module, int] = {}
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []

    def on_conv(module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        calls[module] = calls.get(module, 0) + 1
        produced_by[id(output)] = module  # type: ignore[assignment]
        keep_alive.append(output)

    def on_bn(module: nn.Module, inputs: tuple[Tensor, ...], _output: Tensor) -> None:
        calls[module] = calls.get(module, 0) + 1
        conv = produced_by.get(id(inputs[0]))
        if conv is not None:
            pairs.append((conv, module))  # type: ignore[arg-type]

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_hook(on_bn))
    try:
        model(example)
    finally:
        for handle in handles:
            handle.remove()

    parents = {child: (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    folded = 0
    for conv, bn in pairs:
        if calls[conv] != 1 or calls[bn] != 1:
            continue
        _fold_into_conv(conv, bn)
        parent, name = parents[bn]
        setattr(parent, name, _activation_after(bn))
        folded += 1
    return folded


def _fold_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    new_bias = (bias - bn.running_mean) * scale + (bn.bias if bn.bias is not None else 0.0)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter(new_bias)


def _activation_after(bn: nn.BatchNorm2d) -> nn.Module:
    """What remains of a BN layer once its affine part lives in the conv (timm fuses act into BN)."""
    act = getattr(bn, "act", None)
    drop = getattr(bn, "drop", None)
    parts = [m for m in (drop, act) if isinstance(m, nn.Module) and not isinstance(m, nn.Identity)]
    return nn.Sequential(*parts) if parts else nn.Identity()
