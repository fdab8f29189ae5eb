"""Zeroth-order SignSGD estimate (Liu et al. 2019, "signSGD via zeroth-order oracle"; SVA Sec. 4.5.4, Fig. 9).

ZO-signSGD averages forward-difference estimates along random unit directions and keeps only the sign
of the average: the descent direction is ``sign(g_hat)``, so the estimate's scale carries no
information and only its sign pattern is returned.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vidattack.estimators._probe import check_queries, probe_unit_directions

__all__ = ["signsgd_estimate"]


def signsgd_estimate(
    objective: Callable[[Tensor], Tensor],
    center: Tensor,
    *,
    queries: int = 48,
    mu: float = 1e-3,
    value_at_center: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``sign((1 / q) * sum_i (f(center + mu * u_i) - f(center)) / mu * u_i)``, ``u_i`` uniform on the sphere.

    Args:
        objective: scores a batch ``[P, D] -> [P]``; called exactly once.
        center: the current point ``[D]``.
        queries: objective evaluations per call (the oracle cost). Without ``value_at_center`` one of
            them is spent on ``center`` itself, leaving ``q = queries - 1`` directions; with it,
            ``q = queries``. SVA compares estimators at equal cost, so the default is NES's 48.
        mu: the smoothing (difference) step.
        value_at_center: ``f(center)`` when the caller already knows it (saves one evaluation).
        generator: source of the random directions (CPU generator).

    Returns:
        ``float [D]`` with entries in {-1, 0, 1} (same dtype and device as ``center``).
    """
    check_queries(queries, value_at_center)
    if not mu > 0:
        raise ValueError(f"mu must be > 0, got {mu}")
    differences, directions = probe_unit_directions(
        objective, center, queries=queries, step=mu, value_at_center=value_at_center, generator=generator
    )
    estimate = (differences / mu).reshape(-1, 1).mul(directions).mean(dim=0) * center.numel()
    return estimate.sign()
