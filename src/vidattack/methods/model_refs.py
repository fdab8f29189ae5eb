"""Models named by reference: the image models of priors, and whether a target model is from the zoo.

Priors (V-BAD's transferred tentative perturbation, SVA's frame features) take modules; this is where
their names are turned into modules, so that attacks and priors never look anything up by name.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    loaded: list[nn.Module] = []
    for name in names:
        if "=" in name:
            arch, path = (part.strip() for part in name.split("=", 1))
            module = models.load(path, arch=arch, device=device)
        else:
            module = models.load(name, device=device)
        if not callable(getattr(module, "features", None)):
            raise ValueError(f"image_models: {name!r} is not an image backbone (it has no features(images, layer))")
        module.name = name
        loaded.append(module)
    return loaded


def is_zoo_model(reference: str) -> bool:
    """Whether ``reference`` names a shipped zoo model (trained on the synthetic test bed)."""
    return models.is_zoo_name(reference)
