"""Random gradient-free estimate (Nesterov & Spokoiny 2017) as used by Opt-attack (Cheng et al. 2019, Eq. 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["rgf_estimate"]


def rgf_estimate(
    objective: Callable[[Tensor], Tensor],
    center: Tensor,
    value_at_center: float,
    *,
    samples: int = 20,
    beta: float = 0.005,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(1 / q) * sum_i (f(center + beta * u_i) - f(center)) / beta * u_i`` with ``u_i ~ N(0, I)``.

    Args:
        objective: scores a batch ``[q, D] -> [q]``; called once with all ``samples`` candidates. For
            Opt-attack it is the boundary distance g(theta) and may itself spend many label queries.
        center: the current point ``[D]``; ``value_at_center`` its objective value (already known to
            the caller, so not re-evaluated).
        samples: q, the number of random directions (Opt-attack on video: 20).
        beta: the smoothing step (0.005 in the Heuristic paper; callers divide it by 10 when the estimate
            carries no information).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    dim = center.numel()
    directions = torch.randn(samples, dim, generator=generator, dtype=torch.float32).to(center.device, center.dtype)
    # Opt-attack normalises u so that beta is a step length, independent of the dimension.
    directions = directions / directions.norm(dim=1, keepdim=True).clamp(min=1e-12)
    values = objective(center.reshape(1, dim) + beta * directions).reshape(-1).to(center.dtype)
    if values.numel() != samples:
        raise ValueError(f"objective must return one value per direction ({samples}), got {values.numel()}")
    return ((values - value_at_center) / beta).reshape(-1, 1).mul(directions).mean(dim=0)
