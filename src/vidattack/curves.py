"""Per-query summaries of many attacks' traces: what success-rate and distortion curves plot.

A minimising attack's ``extras[i]["distortion_trace"]`` (:data:`vidattack.result.DistortionPoint`)
lists the distortion of its best adversarial video each time it improves. At a query count ``q`` a
video's value is the smallest distortion among its points with ``queries <= q`` (each measure on its
own, so a MAP curve is never raised by a point that only improved L-inf), or ``inf`` while it has none
(no adversarial video yet). The (lower) median over videos is then the smallest distortion that at
least half the videos reached within ``q`` queries (``inf`` while fewer than half have an adversarial
video).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["DISTORTIONS", "best_at", "median_distortion_curve", "query_grid"]

# Column of a DistortionPoint for each distortion a report can plot, with its axis label.
DISTORTIONS: dict[str, tuple[int, str]] = {
    "linf": (1, "L-inf of the best adversarial so far ([0, 1] scale)"),
    "map": (2, "MAP of the best adversarial so far (0-255)"),
}


def best_at(trace: Sequence[Sequence[float]], queries: int, column: int) -> float:
    """The smallest value in ``column`` among the points of ``trace`` with ``point[0] <= queries`` (``inf`` if none).

    Points lacking ``column`` (a trace recorded with fewer columns) count as ``inf``.
    """
    value = math.inf
    for point in trace:
        if point[0] > queries:
            break
        if len(point) > column:
            value = min(value, float(point[column]))
    return value


def query_grid(budget: int, points: int = 200) -> list[int]:
    """``points`` query counts from 0 to ``budget`` (inclusive, increasing, without repeats)."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    return sorted({round(budget * k / max(points - 1, 1)) for k in range(points)})


def median_distortion_curve(
    traces: Sequence[Sequence[Sequence[float]]], grid: Sequence[int], column: int
) -> list[float]:
    """Lower median over videos of :func:`best_at` at every query count of ``grid`` (``inf`` where undefined).

    Args:
        traces: one distortion trace per video (an empty trace: never adversarial).
        grid: increasing query counts.
        column: 1 for L-inf, 2 for MAP (see :data:`DISTORTIONS`).
    """
    if not traces:
        return [math.inf] * len(grid)
    curve = []
    for queries in grid:
        values = sorted(best_at(trace, queries, column) for trace in traces)
        curve.append(values[(len(values) - 1) // 2])  # lower median: reached by at least half the videos
    return curve
