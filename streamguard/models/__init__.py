"""The detectors: MLVP-Net, LAA-Net and DeepFidelity, behind one registry."""

from streamguard.models import fidelity, laa, mlvp  # noqa: F401  (registers the architectures)
from streamguard.models.config import ConfigError, DetectorConfig, variant_names
from streamguard.models.layers import DetectorModel
from streamguard.models.registry import ARCHITECTURES, build_detector, load_config, register
from streamguard.models.weights import WeightsError

__all__ = [
    "ARCHITECTURES",
    "ConfigError",
    "DetectorConfig",
    "DetectorModel",
    "WeightsError",
    "build_detector",
    "load_config",
    "register",
    "variant_names",
]
