"""Sign-OPT gradient estimate (Cheng et al. 2020, Eq. 3; SVA Sec. 4.5.4, Fig. 9).

Sign-OPT needs only the *sign* of the objective change along each random direction, which a
decision-based attacker gets from a single label query: ``g_hat = (1/q) sum_i sign(f(x + eps u_i) -
f(x)) u_i``. With a score objective the same estimate reads the sign off the scores; it ignores the
magnitudes, so it is robust to flat or saturated probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vidattack.estimators._probe import check_queries, probe_unit_directions

__all__ = ["sign_opt_estimate"]


def sign_opt_estimate(
    objective: Callable[[Tensor], Tensor],
    center: Tensor,
    *,
    queries: int = 48,
    epsilon: float = 1e-3,
    value_at_center: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(1 / q) * sum_i sign(f(center + epsilon * u_i) - f(center)) * u_i`` with ``u_i ~ N(0, I)``.

    Args:
        objective: scores a batch ``[P, D] -> [P]``; called exactly once.
        center: the current point ``[D]``.
        queries: objective evaluations per call; without ``value_at_center`` one of them is
            ``f(center)``, leaving ``q = queries - 1`` directions (Sign-OPT's default ``epsilon`` is 1e-3).
        epsilon: the probing step along each (unit-normalised) direction.
        value_at_center: ``f(center)`` when the caller already knows it.
        generator: source of the random directions (CPU generator).

    Returns:
        The estimate ``[D]`` (same dtype and device as ``center``). Directions whose objective does not
        change contribute nothing (``sign(0) = 0``).
    """
    check_queries(queries, value_at_center)
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    differences, directions = probe_unit_directions(
        objective, center, queries=queries, step=epsilon, value_at_center=value_at_center, generator=generator
    )
    return differences.sign().reshape(-1, 1).mul(directions).mean(dim=0)
