"""Validation in one place: labels and targets against the model's classes, declared parameter ranges,
the model's declared input, and the accounting property of every black-box method."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Counting
from vidattack import ScoreOracle, methods
from vidattack.attacks.vbad import vbad
from vidattack.methods import TensorAttackerData

BLACK_BOX = ["vbad", "pbad", "srbad", "vsquare", "vrays", "vrays-min", "opt", "heuristic", "sva-norl", "sva-random"]
SMALL = {
    "vbad": {"patches": 4}, "pbad": {}, "srbad": {"patches": 4}, "vsquare": {}, "opt": {"num_init": 2},
    "heuristic": {"num_init": 2}, "vrays": {}, "vrays-min": {}, "sva-norl": {"population": 4}, "sva-random": {"population": 4, "trials": 2},
}  # fmt: skip


@pytest.mark.parametrize("method", BLACK_BOX)
def test_black_box_accounting_and_labels(method, toy_model, toy_data) -> None:
    videos, labels = toy_data
    attacker = TensorAttackerData(videos, labels)

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        label=st.integers(-2, 4),
        target=st.one_of(st.none(), st.integers(-1, 4)),
        budget=st.integers(0, 40),
        batch=st.integers(1, 6),
        n=st.integers(1, 2),
    )
    def check(label: int, target: int | None, budget: int, batch: int, n: int) -> None:
        model = Counting(toy_model, num_classes=3)
        label_t = torch.full((n,), label)
        target_t = None if target is None else torch.full((n,), target)
        invalid = not 0 <= label < 3 or (target is not None and (not 0 <= target < 3 or target == label))
        run = lambda: methods.run(  # noqa: E731
            method, model, videos[:n], label_t, target=target_t, budget=budget, batch_size=batch, seed=0,
            params=SMALL[method], attacker_data=attacker,
        )
        if invalid:
            with pytest.raises(ValueError, match="label|target"):
                run()
            assert model.clips == 0  # refused before the model ran
            return
        result = run()
        assert (result.queries <= budget).all()
        assert int(result.queries.sum()) == model.clips  # every clip the model saw is a reported query
        assert len(result.extras) == n
        for i in range(n):
            if not bool(result.success[i]):
                assert result.extras[i].get("stop_reason"), (method, result.extras[i])

    check()


def test_the_core_refuses_an_impossible_label_instead_of_a_false_success(toy_model, toy_data) -> None:
    videos, labels = toy_data
    with pytest.raises(ValueError, match="label must be < 3"):
        vbad(ScoreOracle(toy_model, budget=30), videos[:1], torch.tensor([99]), tentative="static")
    with pytest.raises(ValueError, match="target must differ"):
        methods.run("pgd", toy_model, videos[:1], labels[:1], target=labels[:1])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"eps": 2.0}, "eps"),
        ({"eps": math.inf}, "eps"),
        ({"eps": -0.1}, "eps"),
        ({"eps": math.nan}, "eps"),
        ({"budget": 10**20}, "budget"),
        ({"budget": -1}, "budget"),
        ({"batch_size": 0}, "batch_size"),
        ({"params": {"step_size": -1}}, "step_size"),
        ({"params": {"population": 47}}, "population"),
        ({"params": {"population": "many"}}, "population"),
        ({"params": {"momentum": 1.0}}, "momentum"),
    ],
)
def test_parameter_ranges_are_checked(toy_model, toy_data, kwargs, needle) -> None:
    videos, labels = toy_data
    with pytest.raises(ValueError, match=needle):
        methods.run("vbad", toy_model, videos[:1], labels[:1], **{"budget": 10, **kwargs})


def test_white_box_refuses_a_budget_and_minimising_refuses_eps(toy_model, toy_data) -> None:
    videos, labels = toy_data
    with pytest.raises(ValueError, match="budget"):
        methods.run("pgd", toy_model, videos[:1], labels[:1], budget=100)
    with pytest.raises(ValueError, match="minimising"):
        methods.run("heuristic", toy_model, videos[:1], labels[:1], eps=0.05, budget=100)


def test_a_model_declares_its_input() -> None:
    from vidattack import models

    net = models.load("c3d-synth")
    assert net.input_spec["frames"] == 16 and net.input_spec["height"] == 32
    oracle = ScoreOracle(net)
    with pytest.raises(ValueError, match="shape"):
        oracle.query(torch.rand(1, 16, 3, 64, 64))
    with pytest.raises(ValueError, match="shape"):
        oracle.query(torch.rand(1, 1, 3, 32, 32))
    with pytest.raises(ValueError, match="float32"):
        oracle.query(torch.rand(1, 16, 3, 32, 32, dtype=torch.float64))
    assert oracle.queries == 0
