"""Opt-attack / Heuristic run to convergence (the papers' rule) next to the MAP-stop (the default)."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_toy_videos
from vidattack import methods
from vidattack.attacks.heuristic import heuristic, shared_budget_oracles
from vidattack.attacks.opt_attack import opt_attack
from vidattack.result import is_adversarial
from vidattack.threat import LabelOracle


@pytest.fixture(scope="module")
def pool() -> tuple[torch.Tensor, torch.Tensor]:
    return make_toy_videos(12, seed=7)


def _opt(toy_model, videos, labels, pool, budget: int, **kwargs):
    oracle = LabelOracle(toy_model, budget=budget)
    result = opt_attack(oracle, videos, labels, *pool, generator=torch.Generator().manual_seed(0), **kwargs)
    return oracle, result


def test_converge_keeps_optimising_past_the_map_target(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    # MAP-stop: the initial direction already meets MAP 100, so no update is made.
    _, stopped = _opt(toy_model, videos, labels, pool, 600, map_target=100.0)
    assert bool(stopped.success[0]) and int(stopped.iterations[0]) == 0
    # Run to convergence: the same bound no longer stops it; it is only the success bound.
    oracle, run = _opt(
        toy_model, videos, labels, pool, 600, map_target=100.0, converge=True, max_iterations=3
    )
    assert int(run.iterations[0]) >= 1
    assert bool(run.success[0])
    assert int(run.queries[0]) == oracle.used(0) <= 600
    maps = [point[1] for point in run.trace[0]]
    assert maps[-1] <= maps[0]
    assert run.extras[0]["converge"] is True and stopped.extras[0]["converge"] is False
    with torch.no_grad():
        pred = toy_model(run.adversarial).argmax(1)
    assert bool(is_adversarial(pred, labels, None).all())


def test_converge_without_a_map_target_counts_any_adversarial_point(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    _, run = _opt(toy_model, videos, labels, pool, 300, converge=True)
    assert all(math.isinf(float(extras["map_target"])) for extras in run.extras)
    with torch.no_grad():
        pred = toy_model(run.adversarial).argmax(1)
    assert torch.equal(run.success, is_adversarial(pred, labels, None))


def test_converge_success_still_needs_the_map_bound(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    _, run = _opt(toy_model, videos, labels, pool, 400, map_target=0.01, converge=True, min_beta=0.004)
    assert not bool(run.success[0])
    assert run.extras[0]["stop_reason"] in {"converged", "budget", "max-iterations"}
    if run.extras[0]["stop_reason"] == "converged":
        assert bool(run.extras[0]["converged"])


def test_heuristic_converge_runs_updates_the_map_stop_skips(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    runs = {}
    for converge in (False, True):
        oracles = shared_budget_oracles(toy_model, budget=500)
        runs[converge] = heuristic(
            oracles, videos, labels, *pool, num_init=3, map_target=200.0, converge=converge, max_iterations=2,
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        assert int(runs[converge].queries[0]) == oracles.label.used(0) <= 500
    assert bool(runs[False].success[0]) and int(runs[False].iterations[0]) == 0
    assert bool(runs[True].success[0]) and int(runs[True].iterations[0]) >= 1


def test_converge_entries_in_the_catalog(toy_model, toy_data) -> None:
    for name, base in (("opt-converge", "opt"), ("heuristic-converge", "heuristic")):
        spec, plain = methods.get(name), methods.get(base)
        assert spec.preset.values == {"converge": True}
        assert (spec.threat, spec.kind) == (plain.threat, plain.kind)
        assert "converge" not in methods.parameters(name) and "map_target" in methods.parameters(name)
        assert "converge" in methods.parameters(base)  # the MAP-stop names keep their default
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    for name in ("opt-converge", "heuristic-converge"):
        result = methods.run(
            name, toy_model, videos, labels, budget=300, seed=0,
            params={"init": "random", "map_target": 100.0, "max_iterations": 1},
        )  # fmt: skip
        assert result.extras[0]["converge"] is True
        assert int(result.queries[0]) <= 300
