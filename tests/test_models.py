import copy

import pytest
import torch
import torch.nn.functional as F

from streamguard.models import ConfigError, DetectorModel, WeightsError, build_detector, load_config, variant_names
from streamguard.models.dfem import BRANCHES, DFEM, DifferentialConv2d

VARIANTS = variant_names()


@pytest.fixture(scope="module", params=VARIANTS)
def detector(request: pytest.FixtureRequest) -> DetectorModel:
    torch.manual_seed(0)
    return build_detector(request.param, dropout=0.0)


def images(model: DetectorModel, batch: int = 2, size: int | None = None) -> torch.Tensor:
    size = size or model.config.input_size
    return torch.randn(batch, 3, size, size)


def randomize_batchnorm_statistics(model: torch.nn.Module) -> None:
    """Non-trivial running stats and affine params, so folding them is really exercised."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.8, 1.2)
            module.weight.data.uniform_(0.8, 1.2)
            module.bias.data.uniform_(-0.1, 0.1)


def test_registry_has_every_paper_variant() -> None:
    assert {"mlvp_b0", "mlvp_b4", "mlvp_lite0", "laa_b4", "laa_b0", "deepfidelity_s"} <= set(VARIANTS)


def test_detector_returns_finite_probabilities_of_batch_shape(detector: DetectorModel) -> None:
    detector.eval()
    with torch.no_grad():
        out = detector(images(detector))
    assert out["logit"].shape == out["prob"].shape == (2,)
    assert torch.isfinite(out["prob"]).all() and ((out["prob"] >= 0) & (out["prob"] <= 1)).all()
    assert torch.allclose(out["prob"], torch.sigmoid(out["logit"]))
    if detector.config.arch == "laa":
        stride8 = detector.config.input_size // 8
        assert out["heatmap"].shape == out["consistency"].shape == (2, 1, stride8, stride8)
    if detector.config.arch == "deepfidelity":
        assert torch.allclose(out["fidelity"], 1 - out["prob"], atol=1e-6)


def test_training_step_lowers_loss_and_reaches_every_parameter(detector: DetectorModel) -> None:
    model = copy.deepcopy(detector).train()
    x, y = images(model, batch=4, size=224), torch.tensor([0.0, 1.0, 0.0, 1.0])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_of(out: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(out["logit"], y)
        for name in ("heatmap", "consistency"):
            if name in out:
                loss = loss + F.binary_cross_entropy(out[name], torch.full_like(out[name], 0.5))
        return loss

    losses = []
    for step in range(6):
        optimizer.zero_grad()
        loss = loss_of(model(x))
        loss.backward()
        if step == 0:
            without_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
            assert not without_grad, f"parameters without a finite gradient: {without_grad[:5]}"
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_fuse_matches_unfused_outputs(detector: DetectorModel) -> None:
    model = copy.deepcopy(detector)
    randomize_batchnorm_statistics(model)
    model.eval()
    x = images(model)
    with torch.no_grad():
        before = model(x)
        fused = model.fuse()
        after = fused(x)
    assert fused is model and model.fused
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), "every BatchNorm folds into a conv"
    for key in before:
        assert torch.allclose(before[key], after[key], atol=1e-4), key


def test_fuse_reduces_each_dfem_to_one_conv() -> None:
    model = build_detector("mlvp_b0")
    dfems = [m for m in model.modules() if isinstance(m, DFEM)]
    assert len(dfems) == 2
    assert all(sum(isinstance(b, DifferentialConv2d) for b in d.modules()) == len(BRANCHES) for d in dfems)
    model.fuse()
    for dfem in dfems:
        assert isinstance(dfem.detail, torch.nn.Conv2d) and dfem.detail.kernel_size == (3, 3)
        assert not any(isinstance(m, DifferentialConv2d) for m in dfem.modules())


@pytest.mark.parametrize("kind", [k for k in BRANCHES if k != "vanilla"])
def test_difference_convs_ignore_flat_regions(kind: str) -> None:
    conv = DifferentialConv2d(3, kind)
    flat = torch.full((1, 3, 8, 8), 2.5)
    out = conv(flat)[..., 1:-1, 1:-1]  # away from the zero padding
    assert torch.allclose(out, conv.bias.view(1, 3, 1, 1).expand_as(out), atol=1e-5)


def test_weights_round_trip_through_pt_and_safetensors(tmp_path) -> None:
    from safetensors.torch import save_file

    model = build_detector("deepfidelity_s").eval()
    state = model.state_dict()
    torch.save({"model": state}, tmp_path / "w.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    x = images(model)
    with torch.no_grad():
        expected = model(x)["prob"]
        for name in ("w.pt", "w.safetensors"):
            loaded = build_detector("deepfidelity_s", weights=str(tmp_path / name)).eval()
            assert torch.equal(loaded(x)["prob"], expected)


def test_missing_weights_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        build_detector("deepfidelity_s", weights=str(tmp_path / "nope.pt"))


def test_mismatched_weights_name_the_keys(tmp_path) -> None:
    state = build_detector("deepfidelity_s").state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["head.1.bias"]
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match=r"missing keys: head\.1\.bias.*unexpected keys: extra\.weight"):
        build_detector("deepfidelity_s", weights=str(tmp_path / "w.pt"))


def test_unknown_config_key_names_the_key() -> None:
    with pytest.raises(ConfigError, match="hss_dpeth"):
        load_config("mlvp_b0", hss_dpeth=3)


def test_unknown_variant_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="mlvp_lite0"):
        load_config("mlvp_b9")
