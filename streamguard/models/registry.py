"""Registry of detector architectures (name -> class) and the one way to build a detector."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from streamguard.models.config import CONFIG_DIR, ConfigError, DetectorConfig, config_from_dict, read_yaml, variant_names
from streamguard.models.layers import DetectorModel
from streamguard.models.weights import load_state_dict_strict, read_state_dict

ARCHITECTURES: dict[str, type[DetectorModel]] = {}
M = TypeVar("M", bound=type[DetectorModel])


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make an architecture buildable from configs that say ``arch: name``.

    The class must take its config as the only constructor argument and expose the
    config class as ``Config``.
    """

    def add(cls: M) -> M:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} registered twice")
        ARCHITECTURES[name] = cls
        return cls

    return add


def load_config(variant: str | Path, **overrides: Any) -> DetectorConfig:
    """A variant name (``mlvp_lite0``) or a YAML path -> its typed config."""
    path = Path(variant)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / f"{variant}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown detector {variant!r}; known: {', '.join(variant_names())}")
    values = {"name": path.stem, **read_yaml(path), **overrides, "source": str(path)}
    arch = values.get("arch")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{path}: unknown arch {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    config_cls: type[DetectorConfig] = ARCHITECTURES[arch].Config
    return config_from_dict(config_cls, values, str(path))


def build_detector(variant: str | Path | DetectorConfig, **overrides: Any) -> DetectorModel:
    """Build a detector from a variant name, a YAML path or a config; load its weights if it names any."""
    config = variant if isinstance(variant, DetectorConfig) else load_config(variant, **overrides)
    model = ARCHITECTURES[config.arch](config)
    if config.weights:
        path = config.resolve(config.weights)
        load_state_dict_strict(model, read_state_dict(path), str(path))
    return model
