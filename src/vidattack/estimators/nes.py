"""NES gradient estimation (Wierstra et al. 2014; Ilyas et al. 2018; V-BAD Alg. 2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["nes_estimate", "fitness_transform"]

Objective = Callable[[Tensor], Tensor]


def fitness_transform(values: Tensor, kind: str = "rank") -> Tensor:
    """Map objective values ``[P]`` to fitness values ``[P]`` (higher objective -> higher fitness).

    * ``"rank"``: the rank of each value scaled to [0, 1] (V-BAD's ranking-based FITNESS: 1 "awards"
      the best sample, 0 "punishes" the worst; ties share their mean rank). Invariant to any monotone
      rescaling of the objective, which makes the step independent of probability magnitudes.
    * ``"centered-rank"``: the same, shifted to [-0.5, 0.5].
    * ``"value"``: the raw objective (the plain Monte-Carlo estimator of Eq. 7).
    """
    if kind == "value":
        return values
    if kind not in ("rank", "centered-rank"):
        raise ValueError(f"fitness must be 'rank', 'centered-rank' or 'value', got {kind!r}")
    count = values.numel()
    if count < 2:
        return torch.zeros_like(values)
    order = values.argsort()
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(count, dtype=values.dtype, device=values.device)
    # average ranks over ties so that equal objective values get equal fitness
    unique, inverse = torch.unique(values, return_inverse=True)
    if unique.numel() < count:
        sums = torch.zeros(unique.numel(), dtype=values.dtype, device=values.device).index_add_(0, inverse, ranks)
        counts = torch.bincount(inverse, minlength=unique.numel()).to(values.dtype)
        ranks = (sums / counts)[inverse]
    scaled = ranks / (count - 1)
    return scaled - 0.5 if kind == "centered-rank" else scaled


def nes_estimate(
    objective: Objective,
    center: Tensor,
    *,
    population: int = 48,
    sigma: float = 1e-3,
    antithetic: bool = True,
    fitness: str = "rank",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Estimate the gradient of ``objective`` at ``center [D]`` from ``population`` evaluations.

    Samples ``delta ~ N(0, I)``; with ``antithetic`` the population is ``population // 2`` pairs
    ``(+delta, -delta)``. The estimate is ``1 / (P * sigma) * sum_i delta_i * F(objective(center + sigma
    * delta_i))`` (Eq. 7), ``F`` the fitness transform.

    Args:
        objective: scores a batch ``[P, D] -> [P]``; called exactly once with all ``P`` candidates.
        center: the current point ``[D]``.
        population: number of evaluations (V-BAD default 48; P-BAD 96). Even when antithetic.
        sigma: search standard deviation (V-BAD: 1e-3 untargeted, 1e-6 targeted).
        fitness: see :func:`fitness_transform`.
        generator: source of the Gaussian samples (CPU generator).

    Returns:
        The gradient estimate ``[D]`` (same dtype and device as ``center``).
    """
    if population < 2 or (antithetic and population % 2):
        raise ValueError(f"population must be an even number >= 2 with antithetic sampling, got {population}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    dim = center.numel()
    half = population // 2 if antithetic else population
    noise = torch.randn(half, dim, generator=generator, dtype=torch.float32)
    if antithetic:
        noise = torch.cat([noise, -noise])
    noise = noise.to(device=center.device, dtype=center.dtype)
    candidates = center.reshape(1, dim) + sigma * noise
    values = objective(candidates).reshape(-1).to(center.dtype)
    if values.numel() != population:
        raise ValueError(f"objective must return one value per candidate ({population}), got {values.numel()}")
    weights = fitness_transform(values, fitness)
    return (weights.reshape(-1, 1) * noise).sum(dim=0) / (population * sigma)
