"""Loading weights from local files only (never from a hub), with clear errors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

SUFFIXES = (".pt", ".pth", ".safetensors")


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable, or does not fit the model."""


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.pt``/``.pth`` (optionally under "model"/"state_dict") or ``.safetensors``."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise WeightsError(f"{path}: unsupported weights format {path.suffix!r} (expected one of {', '.join(SUFFIXES)})")
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files surface as many exception types
        raise WeightsError(f"{path}: cannot read weights ({exc})") from exc
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def load_state_dict_strict(module: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Load ``state`` into ``module``; any missing, unexpected or mis-shaped key is an error naming it."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", mismatched)):
        if keys:
            shown = ", ".join(keys[:5]) + (f" ... (+{len(keys) - 5} more)" if len(keys) > 5 else "")
            problems.append(f"{len(keys)} {label} keys: {shown}")
    if problems:
        raise WeightsError(f"{source} does not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state)
