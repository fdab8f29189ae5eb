"""Video RayS (attacks/video_rays.py): label-only L-inf attack by spatio-temporal block flips."""

from __future__ import annotations

import pytest
import torch

from vidattack.attacks.video_rays import level_blocks, level_counts, video_rays
from vidattack.threat import LabelOracle, ScoreOracle


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_blocks_tile_the_clip_and_refine_time_first() -> None:
    shape = (16, 3, 32, 32)
    assert level_counts(shape, 0) == (1, 1, 1, 1)
    assert level_counts(shape, 1) == (2, 1, 1, 1)
    assert level_counts(shape, 4) == (2, 2, 2, 2)
    for level in (0, 3, 7):
        cover = torch.zeros(shape)
        for block in level_blocks(shape, level):
            cover[block] += 1
        assert bool((cover == 1).all()), f"level {level} blocks do not tile the clip exactly once"


@pytest.mark.parametrize("shape,axes", [((16, 3, 32, 32), "thwc"), ((8, 3, 12, 20), "hwc"), ((5, 1, 7, 9), "hwtc")])
def test_the_map_phase_finds_the_blocks_that_carry_perturbation(shape, axes) -> None:
    from vidattack.attacks.video_rays import _blocks_carrying, _max_level

    generator = _seeded(1)
    for level in range(_max_level(shape, axes) + 1):
        # a sparse perturbation: most blocks of the finer levels carry nothing
        delta = torch.randn(*shape, generator=generator) * (torch.rand(*shape, generator=generator) < 0.003)
        expected = [bool(delta[block].any()) for block in level_blocks(shape, level, axes)]
        assert _blocks_carrying(delta, level, axes) == expected, level
        assert level_blocks(shape, level, axes) is not level_blocks(shape, level, axes)  # callers own their list


def test_untargeted_success_on_zoo_clip() -> None:
    from vidattack import models
    from vidattack.data.synthetic import SynthConfig, generate

    net = models.load("c3d-synth")
    clips = generate("test", SynthConfig(frames=16, size=32), indices=range(10))
    with torch.no_grad():
        pred = net(clips.videos).argmax(1)
    index = int((pred == clips.labels).nonzero()[0])
    video, label = clips.videos[index : index + 1], clips.labels[index : index + 1]
    oracle = LabelOracle(net, budget=400)
    result = video_rays(oracle, video, label, eps=0.2, generator=_seeded())
    assert bool(result.success[0]), result.extras
    linf = float((result.adversarial - video).abs().max())
    assert linf <= 0.2 + 1e-6
    assert float(result.adversarial.min()) >= 0 and float(result.adversarial.max()) <= 1
    with torch.no_grad():
        again = int(net(result.adversarial).argmax(1)[0])
    assert again != int(label[0]) and again == int(result.adv_label[0])
    assert result.extras[0]["linf"] == pytest.approx(linf, abs=1e-6)


def test_budget_counts_and_monotone_trace(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    oracle = LabelOracle(toy_model, budget=137)
    result = video_rays(oracle, videos, labels, form="minimising", generator=_seeded())
    for i in range(2):
        assert int(result.queries[i]) == oracle.used(i) <= 137
        assert result.extras[i]["linf"] < float("inf")
        values = [point[1] for point in result.trace[i]]
        assert values, "a found adversarial must leave a trace"
        assert all(b <= a for a, b in zip(values[:-1], values[1:], strict=True)), values
        queries = [point[0] for point in result.trace[i]]
        assert queries == sorted(queries) and queries[-1] <= 137
        assert values[-1] == pytest.approx(result.extras[i]["linf"])
    # the minimising form spends the budget (it has no other stopping rule here)
    assert result.queries.tolist() == [137, 137]
    assert oracle.queries == int(result.queries.sum())


def test_minimising_beats_its_start(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    result = video_rays(LabelOracle(toy_model, budget=600), videos, labels, form="minimising", generator=_seeded())
    trace = result.extras[0]["distortion_trace"]
    assert trace[-1][1] < trace[0][1]


def test_same_seed_same_result(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    runs = [
        video_rays(LabelOracle(toy_model, budget=200), videos, labels, form="minimising", generator=_seeded(3))
        for _ in range(2)
    ]
    assert torch.equal(runs[0].adversarial, runs[1].adversarial)
    assert runs[0].trace == runs[1].trace
    other = video_rays(LabelOracle(toy_model, budget=200), videos, labels, form="minimising", generator=_seeded(4))
    assert not torch.equal(other.adversarial, runs[0].adversarial)


def test_bounded_stops_inside_eps_or_reports_why(toy_model, toy_data) -> None:
    videos, labels = toy_data
    oracle = LabelOracle(toy_model, budget=300)
    result = video_rays(oracle, videos, labels, eps=0.1, generator=_seeded())
    with torch.no_grad():
        pred = toy_model(result.adversarial).argmax(1)
    linf = (result.adversarial - videos).flatten(1).abs().max(1).values
    for i in range(videos.shape[0]):
        if bool(result.success[i]):
            assert float(linf[i]) <= 0.1 + 1e-6 and int(pred[i]) != int(labels[i])
            # bounded: it stops when the bound is reached, before the budget
            assert int(result.queries[i]) <= 300
        else:
            assert result.extras[i]["stop_reason"] in ("budget", "converged", "no adversarial start")
            assert torch.equal(result.adversarial[i], videos[i])
    assert bool(result.success.any())
    assert int(result.queries[result.success].max()) < 300


def test_targeted_needs_and_uses_start_videos(toy_model, toy_data) -> None:
    from conftest import make_toy_videos

    videos, labels = toy_data[0][:1], toy_data[1][:1]
    target = (labels + 1) % 3
    pool, pool_labels = make_toy_videos(12, seed=7)
    with pytest.raises(ValueError, match="start_videos"):
        video_rays(LabelOracle(toy_model), videos, labels, target=target)
    result = video_rays(
        LabelOracle(toy_model, budget=400), videos, labels, pool, pool_labels,
        target=target, form="minimising", generator=_seeded(),
    )
    assert bool(result.success[0]), result.extras
    with torch.no_grad():
        assert int(toy_model(result.adversarial).argmax(1)[0]) == int(target[0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"eps": 0.0}, "eps"),
        ({"form": "smallest"}, "form"),
        ({"batch": 0}, "batch"),
        ({"step": 1.5}, "step"),
        ({"axes": "txy"}, "axes"),
        ({"linf_target": -1.0}, "linf_target"),
    ],
)
def test_bad_arguments_raise_value_error(toy_model, toy_data, kwargs, name) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    with pytest.raises(ValueError, match=name):
        video_rays(LabelOracle(toy_model), videos, labels, **kwargs)


def test_bad_inputs_raise_value_error(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    with pytest.raises(ValueError, match="videos"):
        video_rays(LabelOracle(toy_model), videos[0], labels)
    with pytest.raises(ValueError, match="label"):
        video_rays(LabelOracle(toy_model), videos, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="oracle"):
        video_rays(ScoreOracle(toy_model), videos, labels)
    with pytest.raises(ValueError, match="start_videos"):
        video_rays(LabelOracle(toy_model), videos, labels, videos[:, :4])
