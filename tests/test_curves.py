"""Per-query summaries of distortion traces (what the campaign report's distortion curves plot)."""

from __future__ import annotations

import math

import pytest

from vidattack.curves import best_at, median_distortion_curve, query_grid


def test_best_at_is_the_smallest_value_reached_within_the_query_count() -> None:
    trace = [(10, 0.3, 20.0), (50, 0.1, 25.0), (90, 0.2, 5.0)]
    assert best_at(trace, 9, 1) == math.inf  # nothing adversarial yet
    assert best_at(trace, 10, 1) == 0.3
    assert best_at(trace, 89, 1) == 0.1
    assert best_at(trace, 1000, 1) == 0.1  # a later point with a larger L-inf does not raise it
    assert best_at(trace, 60, 2) == 20.0 and best_at(trace, 90, 2) == 5.0
    assert best_at([(10, 0.3)], 100, 2) == math.inf  # a trace without the MAP column


def test_median_curve_is_infinite_until_half_the_videos_are_adversarial() -> None:
    traces = [[(10, 0.4, 1.0)], [(30, 0.2, 1.0)], [(50, 0.1, 1.0)], []]
    grid = [0, 10, 30, 50, 100]
    curve = median_distortion_curve(traces, grid, 1)
    assert curve[:2] == [math.inf, math.inf]
    assert curve[2] == 0.4  # 0.2 and 0.4 reached: half the videos are at 0.4 or less
    assert curve[3] == 0.2  # 0.1, 0.2, 0.4, inf
    assert all(a >= b for a, b in zip(curve[:-1], curve[1:], strict=True))  # never increases


def test_query_grid_spans_the_budget() -> None:
    grid = query_grid(5000, points=11)
    assert grid[0] == 0 and grid[-1] == 5000 and grid == sorted(set(grid)) and len(grid) == 11
    with pytest.raises(ValueError, match="budget"):
        query_grid(-1)
