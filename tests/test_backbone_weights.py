import torch

from streamguard.models import build_detector
from streamguard.models.backbone import lite0_package_state_dict


def test_lite0_imagenet_weights_load_into_mlvp_backbone_without_missing_or_unexpected_keys() -> None:
    # build_detector loads backbone weights strictly: any missing/unexpected backbone key raises WeightsError.
    # weights=None: only the ImageNet backbone, not the shipped detector weights that would replace it.
    model = build_detector("mlvp_lite0", weights=None)
    package = lite0_package_state_dict()
    backbone = model.backbone.state_dict()
    head_keys = {k for k in package if k.startswith(("conv_head.", "bn2.", "classifier."))}
    assert set(package) - head_keys == set(backbone)
    for key, value in backbone.items():
        assert torch.equal(value, package[key]), key


def test_lite0_weights_give_imagenet_classifier_confident_outputs() -> None:
    import timm

    # The same converted weights drive timm's full classifier: a flat grey image must not give NaNs,
    # and two different inputs must give different top classes' logits (weights are not a no-op).
    classifier = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    classifier.load_state_dict(lite0_package_state_dict(), strict=True)
    classifier.eval()
    with torch.no_grad():
        logits = classifier(torch.stack([torch.zeros(3, 224, 224), torch.linspace(-1, 1, 224).expand(3, 224, 224)]))
    assert torch.isfinite(logits).all() and logits.shape == (2, 1000)
    assert not torch.allclose(logits[0], logits[1])
