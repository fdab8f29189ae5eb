"""Tests of the video Square Attack (vidattack.attacks.video_square)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vidattack import ScoreOracle
from vidattack.attacks.video_square import video_square


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _predict(model: nn.Module, videos: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(videos).argmax(1)


def test_fools_toy_videos_within_bound_and_counts_every_query(toy_model, toy_data) -> None:
    videos, labels = toy_data
    before = videos.clone()
    oracle = ScoreOracle(toy_model, top_k=1, budget=2000)
    # The toy model is confident (top-1 probabilities up to 1.0000): a wide bound keeps the test short.
    result = video_square(oracle, videos, labels, eps=0.2, candidates=4, frame_block=4, generator=_gen())
    assert torch.equal(videos, before)  # inputs not modified in place
    assert bool(result.success.all()), [e["stop_reason"] for e in result.extras]
    assert result.queries.tolist() == [oracle.used(i) for i in range(len(videos))]
    assert float((result.adversarial - videos).abs().max()) <= 0.2 + 1e-6
    assert float(result.adversarial.min()) >= 0.0 and float(result.adversarial.max()) <= 1.0
    # the reported labels are the model's, and they are not the true ones
    assert torch.equal(result.adv_label, _predict(toy_model, result.adversarial))
    assert bool((result.adv_label != labels).all())
    assert len(result.extras) == len(videos) and all(e["stop_reason"] == "success" for e in result.extras)
    assert all(trace[-1][2] and trace[-1][0] == q for trace, q in zip(result.trace, result.queries.tolist(), strict=True))


@pytest.mark.parametrize("budget,candidates", [(1, 4), (7, 4), (30, 8), (50, 1)])
def test_budget_is_never_exceeded_and_failures_say_why(toy_model, toy_data, budget, candidates) -> None:
    videos, labels = toy_data[0][:3], toy_data[1][:3]
    oracle = ScoreOracle(toy_model, top_k=1, budget=budget)
    # a bound far too small to fool the model: the whole budget is spent, to the last query
    result = video_square(oracle, videos, labels, eps=1e-4, candidates=candidates, generator=_gen())
    assert not bool(result.success.any())
    assert result.queries.tolist() == [budget] * 3 == [oracle.used(i) for i in range(3)]
    assert [e["stop_reason"] for e in result.extras] == ["budget"] * 3
    assert float((result.adversarial - videos).abs().max()) <= 1e-4 + 1e-7


def test_same_seed_same_result_and_another_seed_differs(toy_model, toy_data) -> None:
    videos, labels = toy_data

    def attack(seed: int):
        return video_square(ScoreOracle(toy_model, budget=300), videos, labels, eps=0.03, generator=_gen(seed))

    first, again, other = attack(3), attack(3), attack(4)
    assert torch.equal(first.adversarial, again.adversarial)
    assert torch.equal(first.queries, again.queries) and torch.equal(first.success, again.success)
    assert not torch.equal(first.adversarial, other.adversarial)


def test_a_model_defined_here_is_attacked_through_the_oracle() -> None:
    class Brightness(nn.Module):
        """Classifies a video by whether the mean of its first frames beats the mean of its last ones."""

        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(40.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            half = x.shape[1] // 2
            score = self.scale * (x[:, :half].mean(dim=(1, 2, 3, 4)) - x[:, half:].mean(dim=(1, 2, 3, 4)))
            return torch.stack([score, -score], dim=1)

    model = Brightness()
    videos = torch.full((2, 8, 3, 12, 12), 0.5)
    videos[:, :4] += 0.01  # class 0 with a small margin
    labels = torch.zeros(2, dtype=torch.long)
    assert _predict(model, videos).tolist() == [0, 0]
    oracle = ScoreOracle(model, budget=400)
    result = video_square(oracle, videos, labels, eps=0.05, frame_block=4, generator=_gen())
    assert bool(result.success.all())
    assert _predict(model, result.adversarial).tolist() == [1, 1]
    assert result.queries.tolist() == [oracle.used(0), oracle.used(1)]


def test_targeted_shrinks_from_a_target_class_video(toy_model, toy_data) -> None:
    videos, labels = toy_data
    video, label = videos[:1], labels[:1]
    target = torch.tensor([(int(label[0]) + 1) % 3])
    start = videos[(labels == target[0]).nonzero()[0, 0]]
    oracle = ScoreOracle(toy_model, budget=3000)
    result = video_square(
        oracle, video, label, target=target, eps=0.2, frame_block=4, start_video=start, generator=_gen()
    )
    assert float((result.adversarial - video).abs().max()) <= 0.2 + 1e-6
    assert int(result.queries[0]) == oracle.used(0) <= 3000
    if bool(result.success[0]):
        assert int(_predict(toy_model, result.adversarial)[0]) == int(target[0])
    else:
        assert result.extras[0]["stop_reason"] == "budget"
    assert bool(result.success[0]), result.extras


def test_targeted_start_not_of_the_target_class_fails_cleanly(toy_model, toy_data) -> None:
    videos, labels = toy_data
    target = torch.tensor([(int(labels[0]) + 1) % 3])
    oracle = ScoreOracle(toy_model, budget=100)
    # the clean video itself as the "start": never classified as the target
    result = video_square(oracle, videos[:1], labels[:1], target=target, start_video=videos[0], generator=_gen())
    assert not bool(result.success[0])
    assert result.extras[0]["stop_reason"] == "no-start-video"
    assert int(result.queries[0]) == oracle.used(0) > 0


def test_bad_arguments_raise_errors_naming_them(toy_model, toy_data) -> None:
    videos, labels = toy_data
    oracle = ScoreOracle(toy_model)
    cases = [
        ({"eps": 0.0}, "eps"),
        ({"candidates": 0}, "candidates"),
        ({"p_init": 1.5}, "p_init"),
        ({"frame_block": 0}, "frame_block"),
        ({"target": labels}, "target"),
        ({"target": (labels + 1) % 3}, "start_video"),
        ({"max_rounds": 0}, "max_rounds"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=name):
            video_square(oracle, videos, labels, **kwargs)
    with pytest.raises(ValueError, match="oracle"):
        video_square(toy_model, videos, labels)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="videos"):
        video_square(oracle, videos[0], labels)
    with pytest.raises(ValueError, match="label"):
        video_square(oracle, videos, labels[:2])
    assert oracle.queries == 0  # bad arguments cost nothing


def test_fools_a_correctly_classified_zoo_clip_with_a_small_budget() -> None:
    """The shipped c3d-synth on test-bed test clip 3 (correctly classified): fooled in < 1000 queries."""
    from vidattack import models as zoo
    from vidattack.data.synthetic import SynthConfig, generate

    model = zoo.load("c3d-synth").eval()
    clips = generate("test", SynthConfig(), indices=[3])
    video, label = clips.videos, clips.labels
    assert int(_predict(model, video)[0]) == int(label[0])
    oracle = ScoreOracle(model, top_k=1, budget=1000)
    result = video_square(oracle, video, label, generator=_gen())
    assert bool(result.success[0]), result.extras
    assert int(result.queries[0]) == oracle.used(0) <= 1000
    assert float((result.adversarial - video).abs().max()) <= 0.05 + 1e-6
    assert int(_predict(model, result.adversarial)[0]) != int(label[0])


class _MotionEnergy(nn.Module):
    """Class 1 when the mean absolute frame-to-frame change beats a threshold (a pure motion detector)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = (x[:, 1:] - x[:, :-1]).abs().mean(dim=(1, 2, 3, 4))
        score = 4000.0 * (energy - 0.002)
        return torch.stack([-score, score], dim=1)


def test_moving_squares_add_motion_that_static_cuboids_cannot() -> None:
    model = _MotionEnergy()
    videos = torch.full((2, 8, 3, 12, 12), 0.5)  # still clips: class 0 (no motion)
    labels = torch.zeros(2, dtype=torch.long)
    assert _predict(model, videos).tolist() == [0, 0]

    def attack(moving: float):
        oracle = ScoreOracle(model, budget=200)
        result = video_square(oracle, videos, labels, eps=0.05, moving=moving, speed=1.0, generator=_gen())
        return result, oracle

    # squares spanning the whole clip keep the clip still: the detector cannot be fooled
    static, oracle = attack(0.0)
    assert not bool(static.success.any())
    assert static.queries.tolist() == [200, 200] == [oracle.used(0), oracle.used(1)]
    # squares that drift across the frames add motion: fooled, within the bound, counted
    moved, oracle = attack(1.0)
    assert bool(moved.success.all()), moved.extras
    assert _predict(model, moved.adversarial).tolist() == [1, 1]
    assert float((moved.adversarial - videos).abs().max()) <= 0.05 + 1e-6
    assert moved.queries.tolist() == [oracle.used(0), oracle.used(1)]
    assert all(e["moving"] == 1.0 for e in moved.extras)


def test_moving_arguments_are_checked(toy_model, toy_data) -> None:
    videos, labels = toy_data
    oracle = ScoreOracle(toy_model)
    for kwargs, name in [({"moving": 1.5}, "moving"), ({"speed": 0.0}, "speed"), ({"min_side": 0}, "min_side")]:
        with pytest.raises(ValueError, match=name):
            video_square(oracle, videos, labels, **kwargs)
    assert oracle.queries == 0


def test_min_side_floors_the_square_side(toy_model, toy_data) -> None:
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    # past the whole schedule the side would be 1 pixel; the floor keeps it at 3
    result = video_square(
        ScoreOracle(toy_model, budget=60), videos, labels, eps=1e-4, p_init=0.01, schedule=(1,), min_side=3,
        generator=_gen(),
    )
    assert [e["final_side"] for e in result.extras] == [3, 3]


def test_moving_squares_are_squares_that_drift_within_their_block_at_most_speed_per_frame() -> None:
    from vidattack.attacks.video_square import _moving_squares, _State

    clean = torch.full((10, 3, 16, 16), 0.5)
    state = _State(0, clean, 0, -1, clean.clone(), 0.05)
    radii = [0.05, 0.05, 0.03, 0.05, 0.05, 0.05]
    side, block, speed = 4, 6, 1.5
    candidates = _moving_squares(state, radii, side, block, _gen(2), speed)
    assert candidates.shape == (6, 10, 3, 16, 16)
    for candidate, radius in zip(candidates, radii, strict=True):
        delta = candidate - clean
        changed = delta.abs().amax(dim=1) > 0  # [T, H, W]
        frames = [t for t in range(10) if bool(changed[t].any())]
        # one block of consecutive frames, every frame of it carries the square
        assert frames == list(range(frames[0], frames[0] + block))
        corners = []
        for t in frames:
            rows = changed[t].any(dim=1).nonzero().flatten()
            cols = changed[t].any(dim=0).nonzero().flatten()
            # a (possibly cut) side x side square, one sign per channel at the candidate's radius
            assert len(rows) <= side and len(cols) <= side
            assert int(changed[t].sum()) == len(rows) * len(cols)
            values = delta[t][:, changed[t]]
            assert torch.allclose(values.abs(), torch.full_like(values, radius))
            assert bool((values == values[:, :1]).all())
            corners.append((int(rows[0]), int(cols[0])))
        steps = [max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(corners, corners[1:], strict=False)]
        assert max(steps) <= 2  # |round(x + v) - round(x)| <= 2 for |v| <= 1.5 (cut squares may move less)
    # the same seed draws the same squares (the candidates are views of a buffer the next call rewrites)
    first = candidates.clone()
    again = _moving_squares(_State(0, clean, 0, -1, clean.clone(), 0.05), radii, side, block, _gen(2), speed)
    assert torch.equal(first, again)



def test_moving_squares_are_built_on_the_current_point_after_it_moves() -> None:
    from vidattack.attacks.video_square import _moving_squares, _State

    clean = torch.full((6, 3, 12, 12), 0.5)
    state = _State(0, clean, 0, -1, clean.clone(), 0.05)
    for step in range(3):
        # a new point (as after an accepted candidate), partly outside the smaller radius
        state.adv = clean + 0.04 * torch.randn(clean.shape, generator=_gen(step)).sign()
        for radius in (0.05, 0.03):
            candidate = _moving_squares(state, [radius], 3, 4, _gen(step), 1.0)[0]
            base = clean + (state.adv - clean).clamp(-radius, radius)
            # only the square (4 frames x 3 x 3 pixels at most) differs from the current point's clip
            changed = (candidate - base).abs().amax(dim=1) > 0  # [T, H, W]
            assert 0 < int(changed.sum()) <= 4 * 3 * 3


def _rounds_with_acceptance(
    state, rounds: int, accept: list[int | None]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Build ``rounds`` rounds of 4 moving squares on ``state``, accepting candidate ``accept[r]`` (as
    the attack does: the point becomes a view of the buffer); returns (point, candidates) per round."""
    from vidattack.attacks.video_square import _moving_squares

    generator, seen = _gen(5), []
    for r in range(rounds):
        point = state.adv.clone()  # before the call, which rewrites the buffer the point may be a row of
        candidates = _moving_squares(state, [0.05] * 4, 3, 4, generator, 1.0, None, ahead=3)
        seen.append((point, candidates.clone()))
        if accept[r] is not None:
            state.adv = candidates[accept[r]]
    return seen


def _guide(state, seed: int = 3):
    """Give ``state`` a random gradient estimate, as guided squares have (the buffer then restores
    their last squares from the base values read for the squares' change, on the NumPy path)."""
    rng = np.random.default_rng(seed)
    state.gradient = np.append(rng.normal(size=state.clean.numel()), 0.0)
    state.guided, state.frame_signs, state.frame_group = 1.0, 0.5, 2
    return state


@pytest.mark.parametrize("guided", [False, True])
def test_moving_squares_reuse_their_buffer_and_keep_the_accepted_candidate(guided: bool) -> None:
    from vidattack.attacks.video_square import _State

    clean = torch.rand(6, 3, 12, 12, generator=_gen(1))
    start = (clean + 0.05 * torch.randn(clean.shape, generator=_gen(2)).sign()).clamp(0.0, 1.0)
    state = _State(0, clean, 0, -1, start.clone(), 0.05)
    if guided:
        _guide(state)
    accept = [None, 2, None, None, 0, 3, None, 1]
    rounds = _rounds_with_acceptance(state, 8, accept)
    for r, (point, candidates) in enumerate(rounds):
        if r:
            # the accepted candidate became the point, else the point stayed: the buffer's later
            # rounds write into neither
            kept = rounds[r - 1][0] if accept[r - 1] is None else rounds[r - 1][1][accept[r - 1]]
            assert torch.equal(point, kept)
        for candidate in candidates:
            # every candidate is the current point but for its own square: no square of an earlier
            # round is left behind in the reused buffer (4 frames x 3 x 3 pixels at most)
            changed = (candidate - point).abs().amax(dim=1) > 0
            assert 0 < int(changed.sum()) <= 4 * 3 * 3
            assert float((candidate - clean).abs().max()) <= 0.05 + 1e-6
    # the final point is the last accepted candidate's values, kept apart from the buffer
    assert torch.equal(state.adv, rounds[7][1][1])


@pytest.mark.parametrize("guided", [False, True])
def test_moving_squares_through_numpy_and_through_torch_agree(monkeypatch: pytest.MonkeyPatch, guided: bool) -> None:
    from vidattack.attacks import video_square as module

    clean = torch.rand(6, 3, 12, 12, generator=_gen(1), dtype=torch.float64)
    start = (clean + 0.05 * torch.randn(clean.shape, generator=_gen(2), dtype=torch.float64).sign()).clamp(0, 1)
    accept = [None, 2, None, 1, 0, None]

    def rounds(dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        state = module._State(0, clean.to(dtype), 0, -1, start.to(dtype), 0.05)
        return _rounds_with_acceptance(_guide(state) if guided else state, 6, accept)

    for dtype in (torch.float32, torch.float64):
        fast = rounds(dtype)
        with monkeypatch.context() as patch:
            patch.setattr(module, "numpy_views", lambda *tensors: None)  # all through PyTorch, as for bfloat16
            slow = rounds(dtype)
        for (point_a, candidates_a), (point_b, candidates_b) in zip(fast, slow, strict=True):
            assert torch.equal(point_a, point_b) and torch.equal(candidates_a, candidates_b)


def test_moving_squares_keep_the_clips_dtype() -> None:
    from vidattack.attacks.video_square import _moving_squares, _State

    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        clean = torch.full((4, 3, 8, 8), 0.5, dtype=dtype)
        state = _State(0, clean, 0, -1, clean.clone(), 0.05)
        candidates = _moving_squares(state, [0.05, 0.03], 2, 4, _gen(), 1.0, [0, 1])
        assert candidates.dtype == dtype
        for candidate, radius in zip(candidates, (0.05, 0.03), strict=True):
            moved = candidate[candidate != clean]
            assert moved.numel() > 0
            # clean +- the radius, as the clip's dtype computes it
            radius = torch.tensor(radius, dtype=dtype)
            assert set(moved.unique().tolist()) <= {float(clean[0, 0, 0, 0] + radius), float(clean[0, 0, 0, 0] - radius)}


class _Flicker(nn.Module):
    """Class 1 when the clip's mean brightness alternates from frame to frame (a flicker detector)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = x.mean(dim=(2, 3, 4))  # [N, T]
        alternation = (means * (-1.0) ** torch.arange(x.shape[1])).mean(dim=1).abs()
        score = 400.0 * (alternation - 0.01)
        return torch.stack([-score, score], dim=1)


def test_flickering_squares_fool_what_steady_moving_squares_cannot() -> None:
    model = _Flicker()
    videos = torch.full((2, 8, 3, 12, 12), 0.5)
    labels = torch.zeros(2, dtype=torch.long)
    assert _predict(model, videos).tolist() == [0, 0]

    def attack(patterns: tuple[int, ...]):
        oracle = ScoreOracle(model, budget=200)
        result = video_square(oracle, videos, labels, eps=0.05, patterns=patterns, generator=_gen())
        return result, oracle

    # squares with one sign over their frames (moving or not) barely change the frame means' alternation
    steady, oracle = attack((0,))
    assert not bool(steady.success.any())
    assert steady.queries.tolist() == [200, 200] == [oracle.used(0), oracle.used(1)]
    # with squares that may flip sign every frame the search finds the flicker, within the bound
    flicker, oracle = attack((0, 1))
    assert bool(flicker.success.all()), flicker.extras
    assert _predict(model, flicker.adversarial).tolist() == [1, 1]
    assert float((flicker.adversarial - videos).abs().max()) <= 0.05 + 1e-6
    assert flicker.queries.tolist() == [oracle.used(0), oracle.used(1)]
    assert all(e["patterns"] == [0, 1] for e in flicker.extras)


def test_a_flickering_square_flips_its_sign_every_period_frames() -> None:
    from vidattack.attacks.video_square import _moving_squares, _State

    clean = torch.full((8, 3, 16, 16), 0.5)
    state = _State(0, clean, 0, -1, clean.clone(), 0.05)
    for period in (1, 2, 4):
        candidate = _moving_squares(state, [0.05], 4, 8, _gen(period), 0.5, [period])[0]
        delta = candidate - clean
        # the sign of channel 0 in each frame, read where the square is
        signs = [int(torch.sign(delta[t, 0][delta[t, 0] != 0][0])) for t in range(8)]
        flips = [t for t in range(1, 8) if signs[t] != signs[t - 1]]
        assert flips and all(b - a == period for a, b in zip(flips, flips[1:], strict=False)), (period, signs)
        assert flips[0] <= period
        # every channel flips with channel 0: one sign per channel times one sign per frame
        frame_signs = torch.sign(delta.sum(dim=(2, 3)))  # [T, C]
        flipped = torch.tensor(signs, dtype=frame_signs.dtype).view(-1, 1) * signs[0]
        assert torch.equal(frame_signs, frame_signs[:1] * flipped)


def test_patterns_are_checked_and_the_same_seed_gives_the_same_flickers(toy_model, toy_data) -> None:
    videos, labels = toy_data
    oracle = ScoreOracle(toy_model)
    for bad in [(), (-1,), (1.5,), (True,)]:
        with pytest.raises(ValueError, match="patterns"):
            video_square(oracle, videos, labels, patterns=bad)
    assert oracle.queries == 0

    def attack(seed: int):
        return video_square(
            ScoreOracle(toy_model, budget=150), videos, labels, eps=0.03, patterns=(0, 1, 2), generator=_gen(seed)
        )

    first, again = attack(5), attack(5)
    assert torch.equal(first.adversarial, again.adversarial) and torch.equal(first.queries, again.queries)


def test_motion_prior_places_squares_where_the_clip_moves() -> None:
    from vidattack.attacks.video_square import _motion_energy, _moving_squares, _position_cdf, _square, _State

    # a static grey scene where only a bright 6 x 6 patch in the top-left 8 x 8 corner flickers on and
    # off: all of the clip's motion is there
    clean = torch.full((16, 3, 32, 32), 0.5)
    clean[1::2, :, 1:7, 1:7] = 0.9
    side = 3

    def corner_share(share: float) -> float:
        """Share of 200 squares (moving and static) that touch the moving corner."""
        state = _State(0, clean, 0, -1, clean.clone(), 0.05)
        state.energy, state.motion_prior = _motion_energy(clean), share
        generator, hits = _gen(0), 0
        for _ in range(25):  # moving squares, 4 per round; speed 0.1: the square stays near its midpoint
            for candidate in _moving_squares(state, [0.05] * 4, side, 16, generator, 0.1).clone():
                changed = (candidate - clean).abs().amax(dim=(0, 1)) > 0
                hits += bool(changed[:9, :9].any())
        for _ in range(100):  # static squares
            changed = (_square(state, 0.05, side, 16, generator) - clean).abs().amax(dim=(0, 1)) > 0
            hits += bool(changed[:9, :9].any())
        return hits / 200

    # uniform positions touch the corner about (6 + 3 - 1)^2 / 30^2 = 7% of the time; the prior's share
    # goes there by construction, the rest uniform
    assert corner_share(1.0) == 1.0
    assert 0.4 < corner_share(0.5) < 0.75
    # no motion at all (a still clip, a single frame): uniform positions whatever the share
    for still in (torch.full((16, 3, 32, 32), 0.5), torch.rand(1, 3, 32, 32)):
        cdf = _position_cdf(_motion_energy(still), side, 1.0)
        assert cdf.size == 30 * 30 and torch.allclose(torch.from_numpy(cdf).diff(), torch.tensor(1 / 900.0, dtype=torch.float64))


def test_motion_prior_zero_is_the_default_draw_and_the_prior_is_deterministic(toy_model, toy_data) -> None:
    videos, labels = toy_data

    def run(**kwargs: float) -> tuple[torch.Tensor, torch.Tensor]:
        result = video_square(ScoreOracle(toy_model, budget=200), videos, labels, eps=0.05, generator=_gen(4), **kwargs)
        return result.adversarial, result.queries

    default, explicit = run(), run(motion_prior=0.0)
    assert torch.equal(default[0], explicit[0]) and torch.equal(default[1], explicit[1])
    first, again = run(motion_prior=0.7), run(motion_prior=0.7)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ValueError, match="motion_prior"):
            video_square(ScoreOracle(toy_model), videos, labels, motion_prior=bad)


def _estimate(gradient: torch.Tensor) -> np.ndarray:
    """vsquare's layout of a gradient estimate ``[T, C, H, W]``: flat, and a zero at the end (where cut
    square pixels point)."""
    return np.append(gradient.reshape(-1).numpy(), 0.0)


def test_guided_squares_take_the_sign_the_gradient_estimate_asks_for() -> None:
    from vidattack.attacks.video_square import _moving_squares, _State

    clean = torch.full((4, 3, 12, 12), 0.5)
    state = _State(0, clean, 0, -1, clean.clone(), 0.05)
    # log P(label) grows with channel 0 and falls with channel 1; nothing known about channel 2
    gradient = torch.zeros(clean.shape, dtype=torch.float64)
    gradient[:, 0], gradient[:, 1] = 1.0, -1.0
    state.gradient, state.guided = _estimate(gradient), 0.5
    signs = {True: set(), False: set()}  # guided or not -> the signs seen per channel
    generator = _gen(0)
    for _ in range(20):
        for k, candidate in enumerate(_moving_squares(state, [0.05] * 4, 3, 4, generator, 1.0).clone()):
            change = (candidate - clean).transpose(0, 1).reshape(3, -1)  # [C, pixels]
            signs[k < 2].add(tuple(float(row[row != 0][0].sign()) for row in change))
    # the two guided squares of each round lower channel 0, raise channel 1 and keep channel 2's draw
    assert {s[:2] for s in signs[True]} == {(-1.0, 1.0)} and {s[2] for s in signs[True]} == {-1.0, 1.0}
    # the other two are Square Attack's random signs
    assert {s[:2] for s in signs[False]} == {(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)}


class _BlockSigns(nn.Module):
    """Linear in the clip: class 0's logit falls as the change from mid-grey lines up with a pattern of
    random +-1 per channel on 4 x 4 blocks; fooled once that alignment reaches 80% of the bound. A
    square's sign per channel is right for that pattern half the time when drawn at random."""

    def __init__(self) -> None:
        super().__init__()
        signs = torch.randn(3, 4, 4, generator=_gen(5)).sign()
        self.weight = signs.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)  # [3, 16, 16]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alignment = (x - 0.5).mul(self.weight).mean(dim=(1, 2, 3, 4)) / 0.05
        # a scale of 3 keeps P(label) below 1 in float32 from the start, so every answer says something
        score = 3.0 * (0.8 - alignment)
        return torch.stack([score, -score], dim=1)


def test_guided_signs_fool_in_fewer_queries_than_random_signs() -> None:
    model = _BlockSigns()
    videos = torch.full((4, 4, 3, 16, 16), 0.5)
    labels = torch.zeros(4, dtype=torch.long)
    assert bool((_predict(model, videos) == 0).all())

    def mean_queries(guided: float) -> float:
        spent = []
        for seed in range(2):
            oracle = ScoreOracle(model, top_k=1, budget=5000)
            result = video_square(oracle, videos, labels, eps=0.05, guided=guided, generator=_gen(seed))
            assert bool(result.success.all()), [e["stop_reason"] for e in result.extras]
            spent += result.queries.tolist()
        return sum(spent) / len(spent)

    # measured: about 300 queries against 900 (seeds 0-2)
    assert mean_queries(1.0) < 0.6 * mean_queries(0.0)


def test_guided_zero_is_square_attacks_random_draw_and_guided_is_checked(toy_model, toy_data) -> None:
    videos, labels = toy_data

    def run(**kwargs: float) -> tuple[torch.Tensor, torch.Tensor]:
        result = video_square(ScoreOracle(toy_model, budget=200), videos, labels, eps=0.05, generator=_gen(4), **kwargs)
        return result.adversarial, result.queries

    unguided, guided = run(guided=0.0), run()
    assert not torch.equal(unguided[0], guided[0])  # the default follows the estimate
    for bad in (-0.1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="guided"):
            video_square(ScoreOracle(toy_model), videos, labels, guided=bad)


def test_guided_attack_through_torch_matches_numpy(toy_model, toy_data, monkeypatch: pytest.MonkeyPatch) -> None:
    from vidattack.attacks import video_square as module

    videos, labels = toy_data

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        result = video_square(ScoreOracle(toy_model, budget=150), videos, labels, eps=0.02, generator=_gen(2))
        return result.adversarial, result.queries

    fast = run()
    monkeypatch.setattr(module, "numpy_views", lambda *tensors: None)  # all through PyTorch, as for bfloat16
    slow = run()
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


def test_the_gradient_estimate_is_fitted_to_each_answer() -> None:
    import math

    from vidattack.attacks.video_square import _learn_gradient, _moving_squares, _State

    clean = torch.rand(4, 3, 12, 12, generator=_gen(1))
    state = _State(0, clean, 0, -1, clean.clone(), 0.05, loss=0.6)
    state.gradient, state.guided = np.zeros(clean.numel() + 1), 1.0
    generator = _gen(3)
    for answer in (0.5, 0.55, 0.7):
        # large squares on a small clip: each overlaps the ones before, whose answers it must not undo
        candidate = _moving_squares(state, [0.05], 10, 4, generator, 1.0)[0].clone()
        _learn_gradient(state, [answer])
        # afterwards the linear model log P(x + d) = log P(x) + <g, d> predicts this answer exactly
        change = (candidate - state.adv).double().reshape(-1)
        assert float(torch.from_numpy(state.gradient[:-1]) @ change) == pytest.approx(math.log(answer) - math.log(state.loss), abs=1e-9)


def test_frame_signs_follow_the_estimate_frame_by_frame() -> None:
    from vidattack.attacks.video_square import _moving_squares, _State

    clean = torch.full((4, 3, 12, 12), 0.5)
    state = _State(0, clean, 0, -1, clean.clone(), 0.05)
    # log P(label) grows with every channel in frames 0-1 and falls with it in frames 2-3
    gradient = torch.ones(clean.shape, dtype=torch.float64)
    gradient[2:] = -1.0
    state.gradient, state.guided, state.frame_signs = _estimate(gradient), 1.0, 0.5
    for _ in range(10):
        for k, candidate in enumerate(_moving_squares(state, [0.05] * 4, 3, 4, _gen(0), 0.2).clone()):
            per_frame = (candidate - clean).sum(dim=(1, 2, 3)).sign()  # [T]: every channel moves alike here
            if k < 2:  # one sign for the whole block: the frames' sums cancel, so the drawn sign stays
                assert per_frame.unique().numel() == 1
            else:  # down where the estimate rises, up where it falls
                assert per_frame.tolist() == [-1.0, -1.0, 1.0, 1.0]
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ValueError, match="frame_signs"):
            video_square(ScoreOracle(nn.Linear(1, 2)), clean[None], 0, frame_signs=bad)


def test_guided_signs_shortcut_agrees_with_the_general_path() -> None:
    from vidattack.attacks.video_square import _guided_signs

    rng = np.random.default_rng(0)
    count, channels, length, pixels = 5, 3, 8, 4
    estimate = rng.normal(size=count * channels * length * pixels)
    estimate[: channels * length * pixels] = 0.0  # the first square has no answers yet: its drawn signs
    drawn = np.where(rng.random((4, channels)) < 0.5, -1, 1).astype(np.int8)  # the first 4 are guided
    steady = np.ones((count, length), dtype=np.int8)  # a flicker that never flips: the general path
    for in_time, group in ((1, 2), (2, 4), (4, 8), (3, 1)):
        shortcut = _guided_signs(estimate, (count, channels, length), drawn, None, in_time, group)
        general = _guided_signs(estimate, (count, channels, length), drawn, steady, in_time, group)
        assert shortcut.shape == general.shape == (4, channels, length)
        assert np.array_equal(shortcut, general)
        assert np.array_equal(shortcut[0], np.repeat(drawn[0][:, None], length, axis=1))


def test_frame_group_gives_one_sign_per_run_of_frames() -> None:
    from vidattack.attacks.video_square import _moving_squares, _State

    clean = torch.full((4, 3, 12, 12), 0.5)
    # frame by frame the estimate says down, up, up, down; summed over runs of 2 frames, up then down;
    # over a run of 3 frames and the shorter last run of 1, up then down
    gradient = torch.tensor([1.0, -3.0, -1.0, 3.0], dtype=torch.float64).view(4, 1, 1, 1).expand(clean.shape)
    runs = ((1, [-1.0, 1.0, 1.0, -1.0]), (2, [1.0, 1.0, -1.0, -1.0]), (3, [1.0, 1.0, 1.0, -1.0]), (4, None))
    for group, expected in runs:
        state = _State(0, clean, 0, -1, clean.clone(), 0.05)
        state.gradient, state.guided, state.frame_signs, state.frame_group = _estimate(gradient), 1.0, 1.0, group
        for candidate in _moving_squares(state, [0.05] * 4, 3, 4, _gen(group), 0.2):
            per_frame = (candidate - clean).sum(dim=(1, 2, 3)).sign()  # [T]
            if expected is None:  # one run over the whole block: its sum is 0, so the drawn sign stays
                assert per_frame.unique().numel() == 1
            else:
                assert per_frame.tolist() == expected
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="frame_group"):
            video_square(ScoreOracle(nn.Linear(1, 2)), clean[None], 0, frame_group=bad)
