"""Opt-attack for video: boundary-distance searches, the optimisation loop and the attack's contract."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_toy_videos
from vidattack.attacks.decision_boundary import (
    RaySearch,
    bracket_distance,
    lambda_for_map,
    local_distance,
    map_255_along,
)
from vidattack.attacks.opt_attack import opt_attack
from vidattack.result import is_adversarial
from vidattack.threat import LabelOracle, ScoreOracle


@pytest.fixture(scope="module")
def pool() -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate videos for the initial directions (the toy task's 'training split')."""
    return make_toy_videos(12, seed=7)


def _direction(toy_model, toy_data, pool):
    videos, labels = toy_data
    clean, label = videos[0], int(labels[0])
    others = pool[0][pool[1] != label]
    with torch.no_grad():
        preds = toy_model(others).argmax(1)
    other = others[preds != label][0]
    delta = other - clean
    return clean, label, delta / delta.norm(), float(delta.norm())


def test_binary_search_matches_brute_force_scan(toy_model, toy_data, pool) -> None:
    clean, label, theta, length = _direction(toy_model, toy_data, pool)
    oracle = LabelOracle(toy_model)
    search = RaySearch(lambda v: oracle.query(v), clean, label, None)
    g, g_label = bracket_distance(search, theta.unsqueeze(0), torch.tensor([length]), tolerance=1e-5)
    # Brute force: the first adversarial point on a fine grid of the same ray, straight from the model.
    grid = torch.linspace(0, length, 801, dtype=torch.float64)[1:]
    with torch.no_grad():
        preds = torch.cat(
            [
                toy_model(search.points(theta.expand(100, *theta.shape), chunk)).argmax(1)
                for chunk in grid.split(100)
            ]
        )
    flips = (preds != label).nonzero().flatten()
    assert flips.numel() > 0
    first = float(grid[flips[0]])
    step = float(grid[1] - grid[0])
    assert first - step - 1e-5 <= float(g[0]) <= first + 1e-5
    assert int(g_label[0]) != label
    # Cheng et al.'s local search from a nearby start finds the same boundary.
    for start in (float(g[0]) * 0.97, float(g[0]) * 1.04):
        local, _ = local_distance(search, theta.unsqueeze(0), torch.tensor([start], dtype=torch.float64))
        assert abs(float(local[0]) - float(g[0])) <= 2e-5
    # Upper-bound mode: a bound below g answers inf after one query.
    used = oracle.used()
    bounded, _ = local_distance(search, theta.unsqueeze(0), torch.tensor([float(g[0]) * 0.9]), upper=True)
    assert math.isinf(float(bounded[0])) and oracle.used() == used + 1


def test_lambda_for_map_inverts_map(toy_data) -> None:
    clean = toy_data[0][0]
    theta = torch.randn(1, *clean.shape)
    theta = theta / theta.norm()
    lam = lambda_for_map(clean, theta, torch.tensor([2.0], dtype=torch.float64), torch.tensor([100.0]))
    assert abs(float(map_255_along(clean, theta, lam)[0]) - 2.0) < 1e-3


def test_untargeted_opt_attack_success_and_bounds(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    before = videos.clone()
    oracle = LabelOracle(toy_model, budget=300)
    # A MAP target the initial direction already meets: success right after the initialisation.
    result = opt_attack(
        oracle, videos, labels, *pool, map_target=100.0, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(videos, before)
    assert result.method == "opt"
    assert bool(result.success.all())
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    with torch.no_grad():
        pred = toy_model(result.adversarial).argmax(1)
    assert bool(is_adversarial(pred, labels, None).all())
    assert torch.equal(result.adv_label, pred)
    for i in range(2):
        assert int(result.queries[i]) == oracle.used(i) <= 300
        assert result.trace[i][-1][1] <= 100.0
        assert int(result.iterations[i]) == 0


def test_optimisation_lowers_the_boundary_distance(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    oracle = LabelOracle(toy_model, budget=800)
    result = opt_attack(
        oracle, videos, labels, *pool, map_target=0.01, generator=torch.Generator().manual_seed(1)
    )
    assert oracle.used(0) <= 800
    assert int(result.iterations[0]) >= 1
    maps = [point[1] for point in result.trace[0]]
    assert not bool(result.success[0])  # the target is out of reach: stopped by the budget
    # The search direction improved: the final boundary distance is below the initial candidate's.
    assert float(result.extras[0]["g"]) < float(result.extras[0]["g0"])
    assert maps[-1] < float("inf")


def test_targeted_and_same_seed(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    target = (labels + 1) % 3
    runs = []
    for _ in range(2):
        oracle = LabelOracle(toy_model, budget=400)
        runs.append(
            opt_attack(
                oracle,
                videos,
                labels,
                *pool,
                target=target,
                map_target=40.0,
                generator=torch.Generator().manual_seed(3),
            )
        )
    assert torch.equal(runs[0].adversarial, runs[1].adversarial)
    assert torch.equal(runs[0].queries, runs[1].queries)
    if bool(runs[0].success[0]):
        assert int(runs[0].adv_label[0]) == int(target[0])


def test_budget_never_exceeded_and_score_oracle_accepted(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    for budget in (1, 7, 60):
        oracle = ScoreOracle(toy_model, budget=budget)
        result = opt_attack(oracle, videos, labels, *pool, generator=torch.Generator().manual_seed(0))
        assert all(oracle.used(i) <= budget for i in range(2))
        assert result.queries.tolist() == [oracle.used(0), oracle.used(1)]


def test_bad_input_raises(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data
    oracle = LabelOracle(toy_model)
    with pytest.raises(ValueError, match="map_target"):
        opt_attack(oracle, videos[:1], labels[:1], *pool, map_target=0.0)
    with pytest.raises(ValueError, match="init_videos"):
        opt_attack(oracle, videos[:1], labels[:1], pool[0][:, :4], pool[1])
    with pytest.raises(ValueError, match="videos"):
        opt_attack(oracle, videos[0], labels[:1], *pool)
    with pytest.raises(ValueError, match="target"):
        opt_attack(oracle, videos[:1], labels[:1], *pool, target=labels[:1])
    with pytest.raises(ValueError, match="oracle"):
        opt_attack(toy_model, videos[:1], labels[:1], *pool)


class _Texture(torch.nn.Module):
    """Class 1 ("textured") when a clip's pixel standard deviation exceeds 0.1: all noise is class 1."""

    num_classes = 2

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        score = 50.0 * (videos.flatten(1).std(1) - 0.1)
        return torch.stack([-score, score], dim=1)


def test_when_no_noise_start_crosses_other_random_starts_are_tried_and_reported() -> None:
    textured = torch.rand(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(1))  # class 1, like all noise
    oracle = LabelOracle(_Texture(), budget=2000)
    result = opt_attack(oracle, textured, 1, num_init=3, map_target=200.0, generator=torch.Generator().manual_seed(0))
    extras = result.extras[0]
    assert extras["starts_tried"] == "uniform-noise,gaussian-0.25,gaussian-0.5,negative,grey"
    assert extras["start_kind"] == "grey"  # the flat video is the one start of the other class
    assert bool(result.success[0]) and int(result.adv_label[0]) == 0
    hopeless = opt_attack(LabelOracle(lambda v: torch.zeros(len(v), 2).index_fill_(1, torch.tensor([1]), 1.0),
                                      budget=500), textured, 1, num_init=2)  # fmt: skip
    assert hopeless.extras[0]["stop_reason"].startswith("no-start-crossed") and "grey" in hopeless.extras[0]["stop_reason"]
