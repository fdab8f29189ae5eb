"""Models named by reference: the image models of priors, and whether a target model is from the zoo.

Priors (V-BAD's transferred tentative perturbation, SVA's frame features) take modules; this is where
their names are turned into modules, so that attacks and priors never look anything up by name.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vidattack import models

__all__ = ["load_image_models", "is_zoo_model", "split_references"]


def split_references(references: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (blank entries dropped)."""
    if isinstance(references, str):
        references = references.split(",")
    return [reference.strip() for reference in references if reference and reference.strip()]


def load_image_models(
    references: str | Sequence[str], device: torch.device | str | None = None
) -> list[nn.Module]:
    """Image backbones by reference: a zoo name (``"image-small-synth"``), a vidattack checkpoint path,
    or ``"ARCH=PATH"`` for a torchvision backbone with local weights (``"resnet50=/weights/r50.pth"``;
    V-BAD's ensemble is ResNet-50, DenseNet-121 and DenseNet-169, Sec. 4.1). Each module's ``name`` is
    its reference (recorded in the results).

    Raises:
        ValueError: no reference, an unknown model, or a model without ``features(images, layer)``.
    """
    names = split_references(references)
    if not names:
        raise ValueError("image_models: give at least one image model (zoo name, checkpoint or ARCH=PATH)")
    return [_load_image_model(name, device) for name in names]


#: Image backbones loaded in this process, by (reference, device, file state): a campaign runs a
#: method once per video, and loading the backbone again each time cost ~15% of a short SVA run on
#: lrcn-synth (py-spy, 2026-12-06). The priors only read them (eval mode, frozen weights).
_LOADED: OrderedDict[tuple[str, str, Any], nn.Module] = OrderedDict()


def _load_image_model(name: str, device: torch.device | str | None) -> nn.Module:
    arch, path = (part.strip() for part in name.split("=", 1)) if "=" in name else (None, name)
    # a changed checkpoint file is loaded again
    state = (os.stat(path).st_mtime_ns, os.stat(path).st_size) if os.path.isfile(path) else None
    key = (name, str(device), state)
    if key not in _LOADED:
        module = models.load(path, arch=arch, device=device) if arch else models.load(path, device=device)
        if not callable(getattr(module, "features", None)):
            raise ValueError(f"image_models: {name!r} is not an image backbone (it has no features(images, layer))")
        module.name = name
        _LOADED[key] = module
        while len(_LOADED) > 8:
            _LOADED.popitem(last=False)
    return _LOADED[key]


def is_zoo_model(reference: str) -> bool:
    """Whether ``reference`` names a shipped zoo model (trained on the synthetic test bed)."""
    return models.is_zoo_name(reference)
