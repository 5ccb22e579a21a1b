"""Detector configurations: a dataclass per architecture, one flat YAML per variant."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A detector config names an unknown field, variant or architecture."""


@dataclass
class DetectorConfig:
    """Fields every detector has. Architectures subclass this with their own knobs."""

    name: str = ""
    arch: str = ""
    backbone: str = "efficientnet_b0"
    input_size: int = 224  # square face crop, pixels
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    threshold: float = 0.5  # fake probability at which a frame counts as fake
    weights: str | None = None  # whole-detector weights, a local .pt/.safetensors path
    backbone_weights: str | None = None  # local path, or the name of a package that ships them
    loss_weights: dict[str, float] = field(default_factory=dict)
    source: str = ""  # where this config was read from (set by the loader)

    def resolve(self, path: str) -> Path:
        """Relative paths in a config are relative to the file that states them."""
        p = Path(path).expanduser()
        return p if p.is_absolute() or not self.source else Path(self.source).parent / p


C = TypeVar("C", bound=DetectorConfig)


def config_from_dict(cls: type[C], values: dict[str, Any], where: str) -> C:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__} (known: {', '.join(sorted(known))})")
    values = {k: tuple(v) if isinstance(v, list) and k in ("mean", "std") else v for k, v in values.items()}
    return cls(**values)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return data


def variant_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
