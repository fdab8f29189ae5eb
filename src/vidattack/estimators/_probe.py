"""Forward-difference probing along random unit directions, shared by the sign-based estimators."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def check_queries(queries: int, value_at_center: float | None) -> None:
    """``ValueError`` unless ``queries`` leaves at least one direction (see :func:`probe_unit_directions`)."""
    if not isinstance(queries, int) or queries < (1 if value_at_center is not None else 2):
        raise ValueError(f"queries must be an int >= 2 (>= 1 with value_at_center), got {queries!r}")


def probe_unit_directions(
    objective: Callable[[Tensor], Tensor],
    center: Tensor,
    *,
    queries: int,
    step: float,
    value_at_center: float | None,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """``(f(center + step * u_i) - f(center) [q], u [q, D])`` for ``q`` Gaussian directions normalised
    to unit length, with one call to ``objective``.

    Without ``value_at_center`` the first of the ``queries`` evaluations is ``f(center)``, leaving
    ``q = queries - 1`` directions; with it, ``q = queries``.
    """
    dim = center.numel()
    count = queries if value_at_center is not None else queries - 1
    directions = torch.randn(count, dim, generator=generator, dtype=torch.float32).to(
        center.device, center.dtype
    )
    directions = directions / directions.norm(dim=1, keepdim=True).clamp(min=1e-12)
    candidates = center.reshape(1, dim) + step * directions
    if value_at_center is None:
        candidates = torch.cat([center.reshape(1, dim), candidates])
    values = objective(candidates).reshape(-1).to(center.dtype)
    if values.numel() != candidates.shape[0]:
        raise ValueError(
            f"objective must return one value per candidate ({candidates.shape[0]}), got {values.numel()}"
        )
    if value_at_center is None:
        base, values = values[0], values[1:]
    else:
        base = torch.as_tensor(value_at_center, dtype=center.dtype, device=center.device)
    return values - base, directions
