"""Metrics of the five papers, as functions of (clean, adversarial) videos or of attack outcomes.

Per-video metrics take ``clean`` and ``adversarial`` as ``float[N,T,C,H,W]`` in [0, 1] and return
``float[N]``; aggregate metrics take per-video tensors and return a Python float (``nan`` when there is
nothing to average, e.g. ANQ with no success).

| function | definition | paper |
|---|---|---|
| :func:`success_rate` | share of successful attacks (fooling rate) | all |
| :func:`anq`, :func:`mq` | mean / median queries over successful attacks | V-BAD, Heuristic |
| :func:`map_255` | mean absolute perturbation per pixel value, 0-255 scale | SVA, Heuristic, Sparse |
| :func:`map_star_255` | MAP over the perturbed (or masked) region only | Heuristic |
| :func:`frame_sparsity` | share of frames carrying no perturbation | SVA, Sparse |
| :func:`pixel_sparsity` | share of pixels (t, h, w positions) carrying no perturbation | Heuristic |
| :func:`thickness`, :func:`roughness` | mean abs perturbation / mean abs cyclic temporal difference, % of range | Flickering Eq. 10-11 |
| :func:`lp_norms`, :func:`frame_norms` | l0 / l2 / linf per video and per frame | all |
| :func:`gradient_cosine` | cosine between an estimated and the true gradient (diagnostic, needs white-box access) | V-BAD Table 5 |
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vidattack.video import validate_video

__all__ = [
    "perturbation",
    "success_rate",
    "anq",
    "mq",
    "map_255",
    "map_star_255",
    "frame_sparsity",
    "pixel_sparsity",
    "thickness",
    "roughness",
    "lp_norms",
    "frame_norms",
    "summarize",
    "gradient_cosine",
]


def perturbation(clean: Tensor, adversarial: Tensor) -> Tensor:
    """``adversarial - clean`` after checking both are ``[N,T,C,H,W]`` videos of the same shape."""
    validate_video(clean, "clean")
    validate_video(adversarial, "adversarial")
    if clean.shape != adversarial.shape:
        raise ValueError(
            f"clean and adversarial must have the same shape, got {tuple(clean.shape)} and "
            f"{tuple(adversarial.shape)}"
        )
    return adversarial.detach().float() - clean.detach().float().to(adversarial.device)


def _as_bool(success: Tensor | list[bool]) -> Tensor:
    return torch.as_tensor(success).reshape(-1).bool()


def success_rate(success: Tensor | list[bool]) -> float:
    """Share of successful attacks in [0, 1] (the fooling rate); ``nan`` for no attack."""
    flags = _as_bool(success)
    return float(flags.float().mean()) if flags.numel() else math.nan


def _successful_queries(queries: Tensor | list[int], success: Tensor | list[bool]) -> Tensor:
    counts = torch.as_tensor(queries).reshape(-1).double()
    flags = _as_bool(success)
    if counts.shape != flags.shape:
        raise ValueError(f"queries and success must have the same length, got {counts.numel()} and {flags.numel()}")
    return counts[flags]


def anq(queries: Tensor | list[int], success: Tensor | list[bool]) -> float:
    """Average number of queries over successful attacks (V-BAD's ANQ); ``nan`` if none succeeded."""
    chosen = _successful_queries(queries, success)
    return float(chosen.mean()) if chosen.numel() else math.nan


def mq(queries: Tensor | list[int], success: Tensor | list[bool]) -> float:
    """Median number of queries over successful attacks (Heuristic's MQ); ``nan`` if none succeeded.

    For an even count this is the mean of the two middle values (the usual median, not torch's lower one).
    """
    chosen = _successful_queries(queries, success)
    if not chosen.numel():
        return math.nan
    ordered = chosen.sort().values
    middle = ordered.numel() // 2
    if ordered.numel() % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def map_255(clean: Tensor, adversarial: Tensor) -> Tensor:
    """Mean absolute perturbation per pixel value on the 0-255 scale, ``float[N]``.

    MAP = (1 / (T*C*H*W)) * sum |adv - clean| * 255 (SVA Sec. 4.2, Heuristic Sec. 5.1).
    """
    delta = perturbation(clean, adversarial)
    return delta.abs().flatten(1).mean(dim=1) * 255.0


def _pixel_support(delta: Tensor, atol: float) -> Tensor:
    # A pixel (t, h, w) is perturbed when any of its channels is.
    return (delta.abs() > atol).any(dim=2)


def map_star_255(clean: Tensor, adversarial: Tensor, mask: Tensor | None = None, *, atol: float = 0.0) -> Tensor:
    """MAP over the perturbed region only (Heuristic's MAP*), 0-255 scale, ``float[N]``.

    Args:
        mask: optional region ``[N,T,1|C,H,W]`` (or broadcastable); nonzero = inside. Without it the
            region is the set of pixels whose perturbation exceeds ``atol`` in any channel.

    Videos with an empty region get 0.
    """
    delta = perturbation(clean, adversarial)
    if mask is None:
        region = _pixel_support(delta, atol).unsqueeze(2).expand_as(delta)
    else:
        region = (mask.to(delta.device) != 0).expand_as(delta)
    total = (delta.abs() * region).flatten(1).sum(dim=1)
    count = region.flatten(1).sum(dim=1).clamp(min=1)
    return total / count * 255.0


def frame_sparsity(clean: Tensor, adversarial: Tensor, *, atol: float = 0.0) -> Tensor:
    """Share of frames whose perturbation is zero (every value ``<= atol``), ``float[N]`` in [0, 1]."""
    delta = perturbation(clean, adversarial)
    perturbed = (delta.abs() > atol).flatten(2).any(dim=2)
    return 1.0 - perturbed.float().mean(dim=1)


def pixel_sparsity(clean: Tensor, adversarial: Tensor, *, atol: float = 0.0) -> Tensor:
    """Share of pixels (t, h, w positions, all channels) with zero perturbation, ``float[N]`` in [0, 1].

    The Heuristic paper's S: "the proportion of pixels with no perturbations versus all pixels".
    """
    delta = perturbation(clean, adversarial)
    return 1.0 - _pixel_support(delta, atol).flatten(1).float().mean(dim=1)


def thickness(clean: Tensor, adversarial: Tensor) -> Tensor:
    """Mean absolute perturbation per value as % of the value range (Flickering Eq. 10), ``float[N]``.

    For a flicker perturbation broadcast over each frame this equals (1 / 3T) * ||delta||_1 * 100.
    """
    delta = perturbation(clean, adversarial)
    return delta.abs().flatten(1).mean(dim=1) * 100.0


def roughness(clean: Tensor, adversarial: Tensor) -> Tensor:
    """Mean absolute *cyclic* temporal difference of the perturbation, % of range (Eq. 11), ``float[N]``.

    Uses ``delta_t - delta_{t-1}`` with ``delta_{-1} = delta_{T-1}`` (the Roll operator of Eq. 6), as the
    flicker pattern is meant to be played in a loop.
    """
    delta = perturbation(clean, adversarial)
    diff = delta - torch.roll(delta, shifts=1, dims=1)
    return diff.abs().flatten(1).mean(dim=1) * 100.0


def lp_norms(clean: Tensor, adversarial: Tensor, *, atol: float = 0.0) -> dict[str, Tensor]:
    """Per-video ``l0`` (count of perturbed values), ``l2`` and ``linf`` of the perturbation, each ``float[N]``."""
    delta = perturbation(clean, adversarial).flatten(1)
    return {
        "l0": (delta.abs() > atol).sum(dim=1).float(),
        "l2": delta.norm(p=2, dim=1),
        "linf": delta.abs().amax(dim=1),
    }


def frame_norms(clean: Tensor, adversarial: Tensor, *, atol: float = 0.0) -> dict[str, Tensor]:
    """Per-frame ``l0``, ``l2``, ``linf`` and ``map`` (0-255) of the perturbation, each ``float[N, T]``."""
    delta = perturbation(clean, adversarial).flatten(2)
    return {
        "l0": (delta.abs() > atol).sum(dim=2).float(),
        "l2": delta.norm(p=2, dim=2),
        "linf": delta.abs().amax(dim=2),
        "map": delta.abs().mean(dim=2) * 255.0,
    }


def summarize(clean: Tensor, adversarial: Tensor) -> dict[str, Tensor]:
    """Every per-video perturbation metric at once: ``{name: float[N]}`` (the CLI's and campaigns' row)."""
    norms = lp_norms(clean, adversarial)
    return {
        "linf": norms["linf"],
        "l2": norms["l2"],
        "l0": norms["l0"],
        "map": map_255(clean, adversarial),
        "map_star": map_star_255(clean, adversarial),
        "frame_sparsity": frame_sparsity(clean, adversarial),
        "pixel_sparsity": pixel_sparsity(clean, adversarial),
        "thickness": thickness(clean, adversarial),
        "roughness": roughness(clean, adversarial),
    }


def gradient_cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity per video between ``a`` and ``b`` (``[N, ...]``, same shape) -> ``float[N]``.

    0 where either vector is zero (an estimate carrying no information is not "aligned").
    """
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise ValueError(f"a and b must be tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.shape != b.shape or a.dim() < 1:
        raise ValueError(
            f"a and b must have the same shape [N, ...], got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    flat_a = a.detach().reshape(a.shape[0], -1).double()
    flat_b = b.detach().reshape(b.shape[0], -1).to(flat_a.device).double()
    return F.cosine_similarity(flat_a, flat_b, dim=1, eps=1e-30).float()
