"""Video RayS's MAP phase (attacks/video_rays.py, ``map_phase``): sparser adversarial points, L-inf kept."""

from __future__ import annotations

import math

import pytest
import torch

from vidattack.attacks.video_rays import video_rays
from vidattack.metrics import map_255
from vidattack.threat import LabelOracle


def _run(toy_model, videos, labels, budget: int, **params):
    oracle = LabelOracle(toy_model, budget=budget)
    result = video_rays(
        oracle, videos, labels, form="minimising", generator=torch.Generator().manual_seed(0), **params
    )
    return oracle, result


def _linf(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def test_map_phase_lowers_map_and_keeps_the_linf_reached(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    oracle, result = _run(toy_model, videos, labels, 600, map_phase=0.5)
    with torch.no_grad():
        pred = toy_model(result.adversarial).argmax(1)
    maps = map_255(videos, result.adversarial)
    for i in range(2):
        info = result.extras[i]
        assert bool(result.success[i]) and int(pred[i]) != int(labels[i])
        assert int(pred[i]) == int(result.adv_label[i])
        # the MAP phase starts at its share of the budget (or earlier, if the L-inf search converged)
        assert info["map_start"] <= 300
        # L-inf: never above what the L-inf search reached; the returned point is the sparsest one
        assert info["linf"] <= info["linf_before_map"] + 1e-9
        assert _linf(result.adversarial[i], videos[i]) <= info["linf_before_map"] + 1e-6
        assert float(maps[i]) == pytest.approx(info["map"], rel=1e-5)
        assert info["map"] < info["map_before_map"]
        # budget exact: the minimising form spends it all, and the counts agree with the oracle's
        assert int(result.queries[i]) == oracle.used(i) == 600


def test_every_distortion_point_improves_the_best_linf_or_map(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    _, result = _run(toy_model, videos, labels, 500, map_phase=0.6, map_linf=0.3)
    for info in result.extras:
        trace = info["distortion_trace"]
        assert len(trace) >= 2
        queries = [point[0] for point in trace]
        assert queries == sorted(queries) and queries[-1] <= 500
        best_linf, best_map = math.inf, math.inf
        for _, linf, value in trace:
            assert linf < best_linf or value < best_map, trace
            best_linf, best_map = min(best_linf, linf), min(best_map, value)
        assert best_map == pytest.approx(info["map"]) and best_linf == pytest.approx(info["linf"])
        assert best_map < info["map_before_map"]  # the MAP phase lowered it
        # the sparsest point may sit farther out than the best L-inf, but never beyond map_linf
        assert info["map_linf"] <= max(0.3, info["linf_before_map"]) + 1e-6


def test_no_map_phase_without_share_or_in_bounded_form(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    _, plain = _run(toy_model, videos, labels, 300)
    assert "map_start" not in plain.extras[0]
    bounded = video_rays(
        LabelOracle(toy_model, budget=300), videos, labels, eps=0.2, map_phase=0.5,
        generator=torch.Generator().manual_seed(0),
    )
    assert "map_start" not in bounded.extras[0]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"map_phase": 1.5}, "map_phase"), ({"map_linf": 0.0}, "map_linf"), ({"map_max_level": 0}, "map_max_level")],
)
def test_bad_map_arguments_raise(toy_model, toy_data, kwargs, name) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    with pytest.raises(ValueError, match=name):
        video_rays(LabelOracle(toy_model), videos, labels, **kwargs)
