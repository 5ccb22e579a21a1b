import math

import pytest
import torch

from streamguard.models import build_detector, load_config
from training.losses import DetectorLoss, consistency_loss, focal_heatmap_loss


def test_focal_heatmap_loss_matches_centernet_formula() -> None:
    target = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    pred = torch.tensor([[[[0.8, 0.3], [0.1, 0.2]]]])
    pos = -math.log(0.8) * 0.2**2
    neg = -(math.log(0.7) * 0.3**2 * 0.5**4 + math.log(0.9) * 0.1**2 + math.log(0.8) * 0.2**2)
    assert float(focal_heatmap_loss(pred, target)) == pytest.approx(pos + neg, rel=1e-5)
    peak = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert float(focal_heatmap_loss(peak, peak)) < 1e-3  # a perfect prediction costs (almost) nothing


def test_loss_terms_follow_the_model_outputs_and_config_weights() -> None:
    assert DetectorLoss(load_config("mlvp_lite0")).active_terms({"logit": torch.zeros(1), "prob": torch.zeros(1)}) == ["cls"]
    fid = {"logit": torch.zeros(1), "prob": torch.zeros(1), "fidelity": torch.zeros(1)}
    assert DetectorLoss(load_config("deepfidelity_s")).active_terms(fid) == ["cls", "fidelity"]
    laa = DetectorLoss(load_config("laa_b0"))
    assert {k: laa.weights[k] for k in ("cls", "heatmap", "consistency")} == {"cls": 1.0, "heatmap": 10.0, "consistency": 100.0}
    with pytest.raises(ValueError, match="unknown loss weight"):
        DetectorLoss(load_config("mlvp_lite0", loss_weights={"bogus": 1.0}))


def test_a_few_training_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = build_detector("deepfidelity_s", dropout=0.0)
    criterion = DetectorLoss(model.config)
    batch = {
        "image": torch.randn(4, 3, 224, 224),
        "label": torch.tensor([0.0, 1.0, 0.0, 1.0]),
        "fidelity": torch.tensor([0.8, 0.2, 0.7, 0.1]),
    }
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(2):
        loss, terms = criterion(model(batch["image"]), batch)
        assert set(terms) == {"cls", "fidelity"}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():  # the loss after two steps, same batch, still in training mode
        losses.append(float(criterion(model(batch["image"]), batch)[0]))
    assert losses[2] < losses[0]


def test_laa_full_loss_runs_and_backpropagates_into_every_head() -> None:
    model = build_detector("laa_b0", input_size=128)
    criterion = DetectorLoss(model.config)
    heatmap = torch.zeros(2, 1, 16, 16)
    heatmap[1, 0, 8, 8] = 1.0
    batch = {
        "image": torch.randn(2, 3, 128, 128),
        "label": torch.tensor([0.0, 1.0]),
        "heatmap": heatmap,
        "consistency": torch.rand(2, 1, 16, 16),
        "maps_valid": torch.tensor([1.0, 1.0]),
    }
    loss, terms = criterion(model(batch["image"]), batch)
    assert set(terms) == {"cls", "heatmap", "consistency"} and math.isfinite(float(loss.detach()))
    expected = terms["cls"] + 10 * terms["heatmap"] + 100 * terms["consistency"]
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    for name in ("heatmap", "consistency", "cls"):
        head = model.get_submodule(name)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_map_losses_skip_samples_without_masks() -> None:
    pred = torch.full((2, 1, 4, 4), 0.5)
    target = torch.zeros(2, 1, 4, 4)
    target[1] = 1.0  # garbage target on the invalid sample
    outputs = {"logit": torch.zeros(2), "consistency": pred}
    batch = {"label": torch.tensor([0.0, 1.0]), "consistency": target, "maps_valid": torch.tensor([1.0, 0.0])}
    criterion = DetectorLoss(load_config("laa_b0"))
    _, terms = criterion(outputs, batch)
    assert terms["consistency"] == pytest.approx(float(consistency_loss(pred[:1], target[:1])))
