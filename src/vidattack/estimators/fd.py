"""Central finite differences on a random subset of coordinates (V-BAD's FD baseline, Table 2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["fd_estimate"]


def fd_estimate(
    objective: Callable[[Tensor], Tensor],
    center: Tensor,
    *,
    queries: int = 48,
    step: float = 1e-3,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Estimate the gradient at ``center [D]`` by central differences on ``queries // 2`` coordinates.

    The coordinates are drawn without replacement each call (all of them when ``D <= queries // 2``);
    the others get 0. With ``queries`` equal to NES's population the two estimators cost the same number
    of oracle queries per step, which is how V-BAD compares them.

    Args:
        objective: scores a batch ``[P, D] -> [P]``; called once with ``2 * k`` candidates.
        step: the difference step ``h`` in ``(f(x + h e_i) - f(x - h e_i)) / 2h``.
    """
    if queries < 2:
        raise ValueError(f"queries must be >= 2, got {queries}")
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    dim = center.numel()
    count = min(dim, queries // 2)
    chosen = torch.randperm(dim, generator=generator)[:count].to(center.device)
    basis = torch.zeros(count, dim, dtype=center.dtype, device=center.device)
    basis[torch.arange(count, device=center.device), chosen] = step
    candidates = torch.cat([center.reshape(1, dim) + basis, center.reshape(1, dim) - basis])
    values = objective(candidates).reshape(-1).to(center.dtype)
    if values.numel() != 2 * count:
        raise ValueError(f"objective must return one value per candidate ({2 * count}), got {values.numel()}")
    gradient = torch.zeros(dim, dtype=center.dtype, device=center.device)
    gradient[chosen] = (values[:count] - values[count:]) / (2 * step)
    return gradient
