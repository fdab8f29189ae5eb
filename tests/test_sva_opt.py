"""SVA_opt (SVA paper Sec. 4.5.3, Fig. 8): the agent's key frames as the Heuristic attack's temporal mask."""

from __future__ import annotations

import pytest
import torch

from vidattack import methods, metrics, models
from vidattack.attacks.heuristic import heuristic
from vidattack.attacks.sva_opt import sva_opt
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.methods import SyntheticAttackerData
from vidattack.threat import LabelOracle

#: A correctly classified c3d-synth test clip (the one test_heuristic's zoo test uses).
CLIP = 3
#: Small agent settings so that a run takes seconds: 2 epochs x 3 episodes.
SMALL = {"epochs": 2, "episodes": 3, "lr": 1e-3}


@pytest.fixture(scope="module")
def zoo() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    net = models.load("c3d-synth").eval()
    clips = generate("test", SynthConfig(frames=16, size=32), indices=[CLIP])
    with torch.no_grad():
        assert int(net(clips.videos).argmax(1)[0]) == int(clips.labels[0])
    pool = SyntheticAttackerData().pool(30, tuple(clips.videos.shape[1:]))
    return net, clips.videos, clips.labels, pool


def _run(zoo, budget: int, seed: int = 0, **params):
    net, videos, labels, pool = zoo
    oracle = LabelOracle(net, budget=budget)
    result = sva_opt(
        oracle, videos, labels, *pool, map_target=12.75, converge=True, **{**SMALL, **params},
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    return oracle, result


def _perturbed_frames(clean: torch.Tensor, adversarial: torch.Tensor) -> torch.Tensor:
    return (adversarial - clean).abs().flatten(1).amax(dim=1) > 0


def test_runs_on_a_zoo_clip_within_a_small_budget(zoo) -> None:
    net, videos, labels, _ = zoo
    oracle, result = _run(zoo, 1500)
    extras = result.extras[0]
    assert result.method == "sva-opt"
    assert bool(result.success[0])
    assert int(result.queries[0]) == oracle.used(0) <= 1500
    with torch.no_grad():  # adversarial on the model itself, within the success bound
        assert int(net(result.adversarial).argmax(1)[0]) != int(labels[0])
    assert float(metrics.map_255(videos, result.adversarial)[0]) <= 12.75
    # the agent ran its 6 episodes through the same oracle, and its queries are part of the count
    assert len(extras["episode_success"]) == 6 and len(extras["reward_curve"]) == 2
    assert 0 < extras["selector_queries"] <= extras["init_queries"] <= int(result.queries[0])
    assert extras["key_frame_source"] == "agent"
    assert 1 <= extras["num_key_frames"] < 16


def test_only_the_agents_key_frames_are_perturbed(zoo) -> None:
    _, videos, _, _ = zoo
    _, result = _run(zoo, 1500)
    extras = result.extras[0]
    key = extras["key_frames"]
    perturbed = _perturbed_frames(videos[0], result.adversarial[0])
    assert bool(perturbed.any())
    assert not bool((perturbed & ~key).any())  # nothing outside the key frames
    # and nothing outside the returned mask (key frames x salient region)
    outside = (extras["mask"] == 0).expand_as(videos[0])
    assert bool(((result.adversarial[0] - videos[0])[outside] == 0).all())
    assert torch.equal(extras["mask"].flatten(1).amax(dim=1).bool(), key)


@pytest.mark.parametrize("budget", [1, 40, 300, 900])
def test_budget_is_never_exceeded(zoo, budget: int) -> None:
    oracle, result = _run(zoo, budget)
    assert int(result.queries[0]) == oracle.used(0) <= budget
    if not bool(result.success[0]):
        assert result.extras[0]["stop_reason"] != "success"


def test_same_seed_same_result_other_seed_other_draws(zoo) -> None:
    _, first = _run(zoo, 700, seed=3)
    _, again = _run(zoo, 700, seed=3)
    assert torch.equal(first.adversarial, again.adversarial)
    assert torch.equal(first.queries, again.queries)
    assert torch.equal(first.extras[0]["key_frames"], again.extras[0]["key_frames"])
    assert first.extras[0]["episode_maps"] == again.extras[0]["episode_maps"]
    _, other = _run(zoo, 700, seed=4)
    assert other.extras[0]["episode_maps"] != first.extras[0]["episode_maps"]


def test_selection_cap_bounds_the_agents_queries(zoo) -> None:
    _, result = _run(zoo, 800, epochs=20, episodes=5, selection_queries=200)
    extras = result.extras[0]
    assert extras["selection_stop"] == "selection-queries"
    assert len(extras["episode_success"]) < 100
    # checked before each episode: at most one episode (one lock-step search) past the cap
    assert extras["selector_queries"] < 200 + 150


def test_heuristic_frame_selector_hook_takes_a_given_temporal_mask(zoo) -> None:
    """The hook alone: a selector returning fixed frames replaces Alg. 1, and a LabelOracle suffices."""
    net, videos, labels, pool = zoo
    frames = torch.zeros(16, dtype=torch.bool)
    frames[[2, 5, 9, 12]] = True
    calls = []

    def fixed(search, candidates, region, owner):
        calls.append((owner, tuple(candidates.shape), tuple(region.shape)))
        return frames

    oracle = LabelOracle(net, budget=800)
    result = heuristic(
        oracle, videos, labels, *pool, frame_selector=fixed, map_target=12.75,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert calls and calls[0][0] == 0 and calls[0][2] == (16, 1, 32, 32)
    assert int(result.queries[0]) == oracle.used(0) <= 800
    assert result.extras[0]["frames_kept"] == 4 and result.extras[0]["importance_queries"] == 0
    perturbed = _perturbed_frames(videos[0], result.adversarial[0])
    assert bool(perturbed.any()) and not bool((perturbed & ~frames).any())


def test_registered_label_only_and_untargeted(zoo) -> None:
    net, videos, labels, _ = zoo
    spec = methods.get("sva-opt")
    assert spec.threat == "labels" and spec.kind == "minimising"
    assert {"epochs", "lr", "selection_queries", "converge", "map_target", "phi"} <= set(
        methods.parameters("sva-opt")
    )
    result = methods.run(
        "sva-opt", net, videos, labels, budget=600, seed=0,
        params={"epochs": 1, "episodes": 2, "map_target": 12.75}, attacker_data=SyntheticAttackerData(),
    )  # fmt: skip
    assert int(result.queries[0]) <= 600 and result.method == "sva-opt"
    with pytest.raises(ValueError, match="untargeted"):
        sva_opt(LabelOracle(net, budget=10), videos, labels, target=(int(labels[0]) + 1) % 10)
