"""Heuristic attack (Wei et al. 2020): saliency mask, frame importance, temporal selection, budgets."""

from __future__ import annotations

import pytest
import torch

from conftest import make_toy_videos
from vidattack import methods
from vidattack.attacks.heuristic import heuristic, shared_budget_oracles
from vidattack.priors.frame_importance import frame_importance, removal_order
from vidattack.priors.saliency import saliency_mask, spectral_residual_saliency
from vidattack.result import is_adversarial
from vidattack.threat import LabelOracle, ScoreOracle


@pytest.fixture(scope="module")
def pool() -> tuple[torch.Tensor, torch.Tensor]:
    return make_toy_videos(12, seed=7)


@pytest.mark.parametrize("phi", [0.2, 0.6, 0.8, 1.0])
@pytest.mark.parametrize("size", [16, 32])
def test_saliency_mask_covers_the_requested_share_of_each_frame(phi: float, size: int) -> None:
    video = make_toy_videos(2, frames=4, size=size, seed=0)[0]
    mask = saliency_mask(video, phi)
    assert mask.shape == (2, 4, size, size) and mask.dtype == torch.bool
    expected = round(phi * size * size)
    assert (mask.flatten(2).sum(dim=2) == expected).all()


def test_saliency_finds_the_object_on_small_frames() -> None:
    # A bright square on a textured 32x32 background: the square is where the saliency is.
    generator = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 3, 32, 32, generator=generator) * 0.2 + 0.3
    frame[..., 12:18, 18:24] = 0.95
    saliency = spectral_residual_saliency(frame)[0]
    inside = saliency[12:18, 18:24].mean()
    assert inside > 2 * saliency.mean()
    mask = saliency_mask(frame.unsqueeze(0), 0.2)[0, 0]
    assert mask[12:18, 18:24].float().mean() >= 0.75


def test_saliency_rejects_bad_phi() -> None:
    video = torch.rand(2, 3, 8, 8)
    for phi in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="phi"):
            saliency_mask(video, phi)


def test_frame_importance_queries_and_order(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data
    clean, label = videos[0], int(labels[0])
    candidates = pool[0][pool[1] != label][:2]
    oracle = ScoreOracle(toy_model)
    importance = frame_importance(oracle, clean, candidates - clean, label)
    assert oracle.used() == 2 * clean.shape[0]
    with torch.no_grad():
        probs, preds = torch.softmax(toy_model(clean.unsqueeze(0) + (candidates[:1] - clean) * 1.0), 1).max(1)
    orders = removal_order(importance)
    for k, order in enumerate(orders):
        values = [float(importance.probs[k, t]) for t in order]
        assert values == sorted(values, reverse=True)
        assert all(bool(importance.adversarial[k, t]) for t in order)
    # One answer checked against the model: frame 0 of candidate 0 removed.
    video = candidates[0].clone()
    video[0] = clean[0]
    with torch.no_grad():
        p, y = torch.softmax(toy_model(video.unsqueeze(0)), 1).max(1)
    assert int(importance.labels[0, 0]) == int(y[0])
    assert abs(float(importance.probs[0, 0]) - float(p[0])) < 1e-5


@pytest.mark.parametrize("spatial", [False, True])
def test_removed_frames_and_pixels_carry_exactly_zero_perturbation(
    toy_model, toy_data, pool, spatial
) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    before = videos.clone()
    oracles = shared_budget_oracles(toy_model, budget=400)
    result = heuristic(
        oracles,
        videos,
        labels,
        *pool,
        spatial=spatial,
        omega=float("inf"),
        num_init=3,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(videos, before)
    mask = torch.stack([entry["mask"] for entry in result.extras])
    assert mask.shape == (2, videos.shape[1], 1, *videos.shape[-2:])
    delta = result.adversarial - videos
    outside = (mask == 0).expand_as(delta)
    assert bool((delta[outside] == 0).all())
    kept = torch.tensor([entry["frames_kept"] for entry in result.extras])
    assert bool((kept < videos.shape[1]).any())  # omega = inf removes every frame it can
    for i in range(2):
        removed = (mask[i].flatten(1) == 0).all(dim=1)
        assert bool((delta[i][removed] == 0).all())
        if spatial:
            frame_share = (mask[i, ~removed].flatten(1) != 0).float().mean(dim=1)
            assert torch.allclose(frame_share, torch.full_like(frame_share, 0.6), atol=1 / 256)
    with torch.no_grad():
        pred = toy_model(result.adversarial).argmax(1)
    assert torch.equal(pred, result.adv_label)
    assert bool(is_adversarial(pred, labels, None)[result.success].all())


def test_total_of_score_and_label_queries_never_exceeds_the_budget(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    for budget in (5, 40, 150):
        oracles = shared_budget_oracles(toy_model, budget=budget)
        result = heuristic(
            oracles, videos, labels, *pool, num_init=3, generator=torch.Generator().manual_seed(0)
        )
        for i in range(2):
            total = oracles.label.used(i)  # the shared counter: score + label queries
            assert total <= budget
            assert int(result.queries[i]) == total
        assert oracles.score.queries_by_owner is oracles.label.queries_by_owner


def test_importance_queries_are_counted(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    score = ScoreOracle(toy_model)
    label = LabelOracle(toy_model)
    result = heuristic(
        (score, label),
        videos,
        labels,
        *pool,
        num_init=2,
        map_target=200.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert score.used(0) == int(result.extras[0]["importance_queries"]) == 2 * videos.shape[1]
    assert int(result.queries[0]) == score.used(0) + label.used(0)


def test_separate_budgets_are_refused(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    pair = (ScoreOracle(toy_model, budget=100), LabelOracle(toy_model, budget=100))
    with pytest.raises(ValueError, match="share one query budget"):
        heuristic(pair, videos, labels, *pool)
    with pytest.raises(ValueError, match="ScoreOracle"):
        heuristic(LabelOracle(toy_model), videos, labels, *pool)
    with pytest.raises(ValueError, match="phi"):
        heuristic(ScoreOracle(toy_model), videos, labels, *pool, phi=0.0)
    with pytest.raises(ValueError, match="omega"):
        heuristic(ScoreOracle(toy_model), videos, labels, *pool, omega=-1.0)


def test_same_seed_same_result(toy_model, toy_data, pool) -> None:
    videos, labels = toy_data[0][:1], toy_data[1][:1]
    runs = [
        heuristic(
            shared_budget_oracles(toy_model, budget=150),
            videos,
            labels,
            *pool,
            num_init=3,
            generator=torch.Generator().manual_seed(5),
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].adversarial, runs[1].adversarial)
    assert torch.equal(runs[0].queries, runs[1].queries)


def test_registry_entries() -> None:
    assert {"opt", "heuristic"} <= set(methods.names())
    params = methods.parameters("heuristic")
    assert {"spatial", "temporal", "omega", "phi", "map_target", "num_init"} <= set(params)
    assert "init_videos" not in params and "init_videos" not in methods.parameters("opt")
    assert methods.parse_param("heuristic", "spatial=false") == ("spatial", False)
    assert methods.parse_param("heuristic", "omega=inf")[1] == float("inf")
    assert methods.get("opt").threat == "labels"


@pytest.mark.slow
@pytest.mark.parametrize("model_name,video_index", [("c3d-synth", 3), ("lrcn-synth", 3)])
def test_untargeted_heuristic_on_the_zoo(model_name: str, video_index: int) -> None:
    """Temp. + Spat. on a shipped zoo model (benchmarks/results_heuristic.md protocol, one video):
    success within 20,000 queries at MAP <= 3, verified on the model; queries are the shared
    (score + label) oracle count; perturbation only inside the returned mask."""
    from vidattack import metrics, models
    from vidattack.data.synthetic import SynthConfig, generate
    from vidattack.methods import SyntheticAttackerData

    net = models.load(model_name)
    clips = generate("test", SynthConfig(frames=16, size=32), indices=[video_index])
    videos, labels = clips.videos, clips.labels
    with torch.no_grad():
        assert int(net(videos).argmax(1)[0]) == int(labels[0])  # a correctly classified clip
    oracles = shared_budget_oracles(net, budget=20_000)
    result = heuristic(
        oracles, videos, labels, *SyntheticAttackerData().pool(30, tuple(videos.shape[1:])), map_target=3.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert bool(result.success[0])
    assert int(result.queries[0]) == oracles.label.used(0) <= 20_000
    assert int(result.extras[0]["importance_queries"]) == 10 * 16  # 10 candidates x 16 frames
    with torch.no_grad():
        assert int(net(result.adversarial).argmax(1)[0]) != int(labels[0])
    assert float(metrics.map_255(videos, result.adversarial)[0]) <= 3.0
    delta = result.adversarial - videos
    outside = (result.extras[0]["mask"] == 0).expand_as(delta[0])
    assert bool((delta[0][outside] == 0).all())
    assert float(metrics.pixel_sparsity(videos, result.adversarial)[0]) >= 0.4
