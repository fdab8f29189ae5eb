"""Reading weights without executing code: safetensors, or ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["UnsafeCheckpointError", "load_state_dict_file", "load_state_dict_into"]


class UnsafeCheckpointError(ValueError):
    """A checkpoint file holds more than tensors (pickled code or objects) and was not loaded."""


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, never executing code.

    ``torch.save`` files are read with ``weights_only=True``; a top-level ``{"state_dict": ...}``
    (or ``model_state_dict`` / ``model``) wrapper and a DataParallel ``module.`` prefix are removed.

    Raises:
        UnsafeCheckpointError: the pickle holds anything but tensors and plain containers.
        ValueError: missing file or no state dict inside.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # safetensors' SafetensorError for a truncated or damaged file
            raise ValueError(f"cannot read weights file '{path}': {error}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it is not a plain tensor state dict and loading it could execute "
            f"code (torch.load with weights_only=True rejected it: {first}). Convert trusted files to "
            "safetensors, or re-save the state dict alone."
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"cannot read weights file {path}: {error}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    if all(key.startswith("module.") for key in obj):
        obj = {key[len("module.") :]: value for key, value in obj.items()}
    return dict(obj)


def load_state_dict_into(
    module: nn.Module, state: dict[str, Tensor], source: str | Path = "state dict"
) -> None:
    """``module.load_state_dict(state)`` (strict) with a readable error on mismatch."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
        for key in own
        if key in state and tuple(state[key].shape) != tuple(own[key].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:2]}; check num_classes / width)")
        raise ValueError(f"weights in {source} do not fit the model: " + "; ".join(parts))
    module.load_state_dict(state)
