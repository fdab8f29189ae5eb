"""Fig. 1/4 of Wei et al. 2019 (sparse l2,1): where a perturbation of the first frames propagates."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from vidattack import viz
from vidattack.attacks.sparse_universal import propagation_profile
from vidattack.threat import WhiteBox

__all__ = ["plot_propagation"]


def plot_propagation(
    model: WhiteBox, clean: Tensor, adversarial: Tensor, path: str | Path, *, title: str | None = None
) -> Path:
    """Fig. 1/4-style plot of one video ``[T,C,H,W]`` (or ``[1,T,C,H,W]``): per-frame MAP bars, annotated
    with the per-frame labels of the clean and the adversarial video (``clean>adv``, red where they differ).
    """


    clean = clean.reshape(1, *clean.shape[-4:])
    adversarial = adversarial.reshape(1, *adversarial.shape[-4:])
    profile = propagation_profile(model, clean, adversarial)
    return viz.frame_profile(
        profile["frame_map"][0], path, clean_labels=profile["clean_frame_labels"][0],
        adv_labels=profile["adv_frame_labels"][0], title=title or "Per-frame MAP, frame labels clean>adv",
    )  # fmt: skip
