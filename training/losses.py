"""Training losses for the three detectors, weighted by the detector config's ``loss_weights``.

- ``cls``: BCE on the fake logit (every detector).
- ``heatmap``: LAA-Net's focal loss on the vulnerable-point heatmap (CenterNet's variant, alpha 2, beta 4).
- ``consistency``: BCE between the predicted and target self-consistency maps.
- ``fidelity``: smooth-L1 regression of DeepFidelity's fidelity score onto its target.

A term is used only when the model outputs what it needs, and map terms only on samples whose maps are known
(``maps_valid``: reals and synthetic fakes, not dataset fakes without masks). Losses run in float32 outside
autocast: the map heads output probabilities, and BCE on half-precision probabilities is unsafe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamguard.models.config import DetectorConfig

EPS = 1e-4
# Used when the config states none: every model has the binary head; fidelity models regress their score too.
DEFAULT_WEIGHTS = {"cls": 1.0, "heatmap": 10.0, "consistency": 100.0, "fidelity": 1.0}
NEEDS = {"cls": "logit", "heatmap": "heatmap", "consistency": "consistency", "fidelity": "fidelity"}


def focal_heatmap_loss(pred: Tensor, target: Tensor, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """CenterNet's penalty-reduced focal loss: positives where the target is 1, negatives weighted by
    ``(1 - target)^beta`` so pixels near a peak are punished less; summed and divided by the number of peaks."""
    pred = pred.clamp(EPS, 1 - EPS)
    positive = target.ge(1 - 1e-4).float()
    pos_loss = -(torch.log(pred) * (1 - pred) ** alpha * positive).sum()
    neg_loss = -(torch.log(1 - pred) * pred**alpha * (1 - target) ** beta * (1 - positive)).sum()
    return (pos_loss + neg_loss) / positive.sum().clamp(min=1.0)


def consistency_loss(pred: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy(pred.clamp(EPS, 1 - EPS), target)


def fidelity_loss(pred: Tensor, target: Tensor) -> Tensor:
    return F.smooth_l1_loss(pred, target, beta=0.1)


class DetectorLoss(nn.Module):
    """``forward(outputs, batch) -> (total, terms)``: the weighted sum and each unweighted term (detached)."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        unknown = sorted(set(config.loss_weights) - set(NEEDS))
        if unknown:
            raise ValueError(f"{config.name}: unknown loss weight(s) {', '.join(unknown)} (known: {', '.join(NEEDS)})")
        self.weights = {**DEFAULT_WEIGHTS, **config.loss_weights}

    def active_terms(self, outputs: dict[str, Tensor]) -> list[str]:
        return [name for name, key in NEEDS.items() if key in outputs and self.weights.get(name, 0.0) > 0]

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        device_type = outputs["logit"].device.type
        with torch.autocast(device_type, enabled=False):
            terms = self._terms({k: v.float() for k, v in outputs.items()}, batch)
        total = sum((self.weights[name] * value for name, value in terms.items()), torch.zeros((), device=outputs["logit"].device))
        return total, {name: float(value.detach()) for name, value in terms.items()}

    def _terms(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        active = self.active_terms(outputs)
        label = batch["label"].float()
        terms: dict[str, Tensor] = {}
        if "cls" in active:
            terms["cls"] = F.binary_cross_entropy_with_logits(outputs["logit"], label)
        valid = batch.get("maps_valid", torch.ones_like(label)).bool()
        if any(name in active for name in ("heatmap", "consistency")):
            zero = outputs["logit"].sum() * 0  # keeps the graph when no sample has maps
            for name, loss in (("heatmap", focal_heatmap_loss), ("consistency", consistency_loss)):
                if name in active:
                    pred, target = outputs[name], batch[name].float()
                    if pred.shape != target.shape:
                        raise ValueError(f"{name}: model gives {tuple(pred.shape)}, targets are {tuple(target.shape)}")
                    terms[name] = loss(pred[valid], target[valid]) if valid.any() else zero
        if "fidelity" in active:
            terms["fidelity"] = fidelity_loss(outputs["fidelity"], batch["fidelity"].float())
        return terms
