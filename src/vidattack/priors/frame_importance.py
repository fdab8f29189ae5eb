"""Frame importance by deletion (Heuristic attack, Wei et al. AAAI 2020, Alg. 1 lines 3-9).

For a perturbation ``p`` (e.g. ``x_hat - x`` restricted to a mask) the importance of frame ``t`` is read
from the model's top-1 answer on ``x + p * M_t``, where ``M_t`` removes frame ``t``'s perturbation:
``(y_t, P(y_t | x + p M_t)) = F(x + p M_t)``. Frames whose removal keeps the video adversarial are
sorted by that probability in *descending* order: a large probability means the frame matters little
to the attack, so it is the first candidate for removal. Queries go through a
:class:`~vidattack.threat.ScoreOracle` (top-1 label and probability, the Heuristic paper's threat model)
and are counted by it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from vidattack.result import is_adversarial
from vidattack.threat import ScoreOracle

__all__ = ["FrameImportance", "frame_importance", "removal_order"]


class FrameImportance(NamedTuple):
    """Answers for every (candidate, removed frame): ``labels long[K,T]``, ``probs float[K,T]``,
    ``adversarial bool[K,T]`` (the answer is the target, or not the true label when untargeted)."""

    labels: Tensor
    probs: Tensor
    adversarial: Tensor


def frame_importance(
    oracle: ScoreOracle,
    clean: Tensor,
    perturbations: Tensor,
    label: int,
    target: int | None = None,
    *,
    frames: Tensor | None = None,
    owner: int = 0,
) -> FrameImportance:
    """Query ``x + p_k M_t`` for every candidate ``k`` and frame ``t`` (one batched oracle call).

    Args:
        oracle: top-1 score access; costs ``K * T'`` queries charged to ``owner``.
        clean: ``[T,C,H,W]`` in [0, 1].
        perturbations: ``[K,T,C,H,W]`` with ``clean + p_k`` in [0, 1].
        label, target: true class and target class (``None``: untargeted).
        frames: ``bool [K,T]`` frames to test (default: all); others get label -1, prob 0, not adversarial.

    Returns:
        :class:`FrameImportance` of shape ``[K, T]``.
    """
    count, num_frames = perturbations.shape[:2]
    if clean.shape != perturbations.shape[1:]:
        raise ValueError(
            f"perturbations must be [K, *clean.shape], got {tuple(perturbations.shape)} "
            f"for {tuple(clean.shape)}"
        )
    chosen = torch.ones(count, num_frames, dtype=torch.bool) if frames is None else frames.cpu().bool()
    pairs = chosen.nonzero()
    labels = torch.full((count, num_frames), -1, dtype=torch.long)
    probs = torch.zeros(count, num_frames)
    adversarial = torch.zeros(count, num_frames, dtype=torch.bool)
    if pairs.numel() == 0:
        return FrameImportance(labels, probs, adversarial)
    videos = clean.unsqueeze(0) + perturbations[pairs[:, 0]]
    videos[torch.arange(pairs.shape[0]), pairs[:, 1]] = clean[pairs[:, 1]]
    answer = oracle.query(videos.clamp_(0.0, 1.0), owner=owner)
    top_labels, top_probs = answer.labels[:, 0].cpu(), answer.probs[:, 0].float().cpu()
    labels[pairs[:, 0], pairs[:, 1]] = top_labels
    probs[pairs[:, 0], pairs[:, 1]] = top_probs
    size = top_labels.numel()
    flags = is_adversarial(
        top_labels, torch.full((size,), label), None if target is None else torch.full((size,), target)
    )
    adversarial[pairs[:, 0], pairs[:, 1]] = flags
    return FrameImportance(labels, probs, adversarial)


def removal_order(importance: FrameImportance) -> list[list[int]]:
    """Per candidate, the frames whose removal stays adversarial, by descending probability (Alg. 1 l. 9).

    Ties keep frame order (stable sort).
    """
    orders = []
    for probs, flags in zip(importance.probs, importance.adversarial, strict=True):
        frames = flags.nonzero().flatten()
        ranked = torch.argsort(-probs[frames], stable=True)
        orders.append([int(f) for f in frames[ranked]])
    return orders
