"""Flickering attack (Pony et al. 2021): perturbation, loss, regularisers, bounds, single-video attack."""

from __future__ import annotations

import pytest
import torch

from vidattack import WhiteBox, methods, metrics
from vidattack.attacks.flicker import (
    MaskedAdam,
    apply_flicker,
    delta_roughness,
    delta_thickness,
    flicker,
    flicker_margin_loss,
    roll_offsets,
    roughness_reg,
    thickness_reg,
)

# A hand-made delta, T = 4 frames, 3 channels.
DELTA = torch.tensor(
    [[0.10, -0.20, 0.00], [0.30, 0.10, -0.10], [-0.20, 0.00, 0.05], [0.00, 0.40, 0.20]], dtype=torch.float64
)


def test_apply_flicker_is_constant_within_each_frame_and_channel() -> None:
    videos = torch.full((2, 4, 3, 5, 6), 0.5, dtype=torch.float64)
    adv = apply_flicker(videos, DELTA)
    diff = adv - videos
    # Each (frame, channel) plane carries one value, equal to delta (no clipping at 0.5 +- 0.4).
    assert torch.equal(diff.amax(dim=(-2, -1)), diff.amin(dim=(-2, -1)))
    assert torch.allclose(diff[:, :, :, 0, 0], DELTA.expand(2, 4, 3))


def test_apply_flicker_clips_to_valid_range() -> None:
    videos = torch.rand(3, 4, 3, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    adv = apply_flicker(videos, DELTA * 5)
    assert adv.min() >= 0 and adv.max() <= 1
    assert torch.allclose(adv, (videos + 5 * DELTA[None, :, :, None, None]).clamp(0, 1))


def test_roll_matches_paper_definition() -> None:
    # Roll(X, tau)[t] = x[(t + tau) mod T] (Eq. 6, zero-based here).
    rolled = roll_offsets(DELTA, 1)
    assert torch.equal(rolled, DELTA[[1, 2, 3, 0]])
    batch = roll_offsets(DELTA, torch.tensor([0, 3]))
    assert torch.equal(batch[0], DELTA) and torch.equal(batch[1], DELTA[[3, 0, 1, 2]])


def test_thickness_regulariser_by_hand() -> None:
    expected = sum(float(v) ** 2 for v in DELTA.flatten()) / 12
    assert float(thickness_reg(DELTA)) == pytest.approx(expected)


def test_roughness_regulariser_by_hand_with_cyclic_wrap() -> None:
    rows = DELTA.tolist()
    t_count = len(rows)
    first = second = 0.0
    for t in range(t_count):
        nxt, prev = rows[(t + 1) % t_count], rows[(t - 1) % t_count]  # the wrap: frame T-1 neighbours frame 0
        for c in range(3):
            first += (nxt[c] - rows[t][c]) ** 2
            second += (prev[c] - 2 * rows[t][c] + nxt[c]) ** 2
    expected = first / 12 + second / 12
    assert float(roughness_reg(DELTA)) == pytest.approx(expected)
    # The wrap matters: a non-cyclic difference would give a different value.
    straight = ((DELTA[1:] - DELTA[:-1]) ** 2).sum() / 12
    assert float(((roll_offsets(DELTA, 1) - DELTA) ** 2).mean()) != pytest.approx(float(straight))


def test_thickness_and_roughness_metrics_match_paper_for_a_broadcast_delta() -> None:
    # Eq. 10-11 on delta [T, 3] equal the per-pixel metrics of vidattack.metrics on the broadcast video.
    videos = torch.full((1, 4, 3, 3, 3), 0.5, dtype=torch.float64)
    adv = apply_flicker(videos, DELTA)
    by_hand_thickness = DELTA.abs().sum() / 12 * 100
    diffs = [abs(DELTA[(t + 1) % 4, c] - DELTA[t, c]) for t in range(4) for c in range(3)]
    by_hand_roughness = sum(diffs) / 12 * 100
    assert float(delta_thickness(DELTA)) == pytest.approx(float(by_hand_thickness))
    assert float(delta_roughness(DELTA)) == pytest.approx(float(by_hand_roughness))
    assert float(metrics.thickness(videos, adv)[0]) == pytest.approx(float(by_hand_thickness))
    assert float(metrics.roughness(videos, adv)[0]) == pytest.approx(float(by_hand_roughness))


def test_margin_loss_branches() -> None:
    m = 0.05
    # probs of class 0 = 0.5, class 1 = 0.3 -> l_m = 0.5 - 0.3 + 0.05 = 0.25 (linear branch, > m).
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    assert float(flicker_margin_loss(logits, torch.tensor([0]), margin=m)) == pytest.approx(0.25, abs=1e-6)
    # probs 0.40 vs 0.42 -> l_m = 0.03 < m: quadratic branch l_m^2 / m.
    logits = torch.log(torch.tensor([[0.40, 0.42, 0.18]]))
    assert float(flicker_margin_loss(logits, torch.tensor([0]), margin=m)) == pytest.approx(
        0.03**2 / m, abs=1e-6
    )
    # goal reached with margin: zero.
    logits = torch.log(torch.tensor([[0.2, 0.7, 0.1]]))
    assert float(flicker_margin_loss(logits, torch.tensor([0]), margin=m)) == 0.0
    # targeted at class 1 (prob 0.7, best other 0.2): l_m = 0.2 - 0.7 + 0.05 < 0 -> 0; at class 2: positive.
    assert float(flicker_margin_loss(logits, torch.tensor([0]), torch.tensor([1]), margin=m)) == 0.0
    assert float(
        flicker_margin_loss(logits, torch.tensor([0]), torch.tensor([2]), margin=m)
    ) == pytest.approx(0.65, abs=1e-6)
    # logits space is 0 once the probability gap exceeds m, positive otherwise.
    assert (
        float(
            flicker_margin_loss(torch.log(torch.tensor([[0.2, 0.7, 0.1]])), torch.tensor([0]), space="logits")
        )
        == 0.0
    )
    assert (
        float(
            flicker_margin_loss(
                torch.log(torch.tensor([[0.45, 0.42, 0.13]])), torch.tensor([0]), space="logits"
            )
        )
        > 0
    )


def test_margin_loss_falls_back_to_logits_when_softmax_saturates() -> None:
    # A confident model: p(true) == 1.0 in float32, so the probability loss has a vanishing gradient.
    logits = torch.tensor([[40.0, 0.0, -5.0]], requires_grad=True)
    label = torch.tensor([0])
    plain = flicker_margin_loss(logits, label, saturation=0.0)
    (grad_plain,) = torch.autograd.grad(plain.sum(), logits)
    assert float(grad_plain.abs().sum()) < 1e-12
    loss = flicker_margin_loss(logits, label)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    assert float(grad[0, 0]) > 0 and float(grad[0, 1]) < 0  # pushes the true logit down, the runner-up up
    # outside saturation the paper's probability loss is used unchanged
    soft = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    assert float(flicker_margin_loss(soft, label)) == pytest.approx(0.25, abs=1e-6)


def test_masked_adam_freezes_rows_exactly() -> None:
    param = torch.zeros(2, 3)
    optimiser = MaskedAdam(param, lr=0.1)
    optimiser.step(torch.ones(2, 3))
    frozen = param[1].clone()
    optimiser.step(torch.ones(2, 3), torch.tensor([True, False]))
    optimiser.step(torch.ones(2, 3), torch.tensor([True, False]))
    assert torch.equal(param[1], frozen)
    assert torch.all(param[0] < frozen)


def test_flicker_fools_toy_model_and_keeps_structure(toy_model, toy_data) -> None:
    videos, labels = toy_data
    videos, labels = videos[:3], labels[:3]
    before = videos.clone()
    result = flicker(WhiteBox(toy_model), videos, labels, steps=150, lr=2e-2, patience=15)
    assert torch.equal(videos, before)  # input untouched
    assert bool(result.success.all())
    with torch.no_grad():
        assert torch.equal(toy_model(result.adversarial).argmax(1), result.adv_label)
    offsets = torch.stack([entry["offsets"] for entry in result.extras])
    assert len(result.extras) == 3 and offsets.shape == (3, videos.shape[1], 3)
    # The adversarial video is exactly clip(clean + delta): constant per frame and channel before clipping.
    assert torch.allclose(result.adversarial, apply_flicker(videos, offsets), atol=1e-6)
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    assert torch.all(result.iterations <= 150)


def test_flicker_respects_linf_bound(toy_model, toy_data) -> None:
    videos, labels = toy_data
    result = flicker(WhiteBox(toy_model), videos[:2], labels[:2], eps=0.03, steps=30, lr=1e-2, patience=10)
    assert max(float(entry["offsets"].abs().max()) for entry in result.extras) <= 0.03 + 1e-7
    assert float((result.adversarial - videos[:2]).abs().max()) <= 0.03 + 1e-6


def test_flicker_targeted(toy_model, toy_data) -> None:
    videos, labels = toy_data
    target = (labels[:1] + 1) % 3
    result = flicker(
        WhiteBox(toy_model), videos[:1], labels[:1], target=target, steps=150, lr=2e-2, patience=10
    )
    assert bool(result.success[0]) == bool(result.adv_label[0] == target[0])
    assert bool(result.success[0])


def test_flicker_is_deterministic_and_validates(toy_model, toy_data) -> None:
    videos, labels = toy_data
    first = flicker(
        WhiteBox(toy_model),
        videos[:1],
        labels[:1],
        steps=20,
        init_scale=0.01,
        generator=torch.Generator().manual_seed(3),
    )
    second = flicker(
        WhiteBox(toy_model),
        videos[:1],
        labels[:1],
        steps=20,
        init_scale=0.01,
        generator=torch.Generator().manual_seed(3),
    )
    assert torch.equal(first.adversarial, second.adversarial)
    with pytest.raises(ValueError, match="white-box"):
        flicker(toy_model, videos[:1], labels[:1])
    with pytest.raises(ValueError, match="videos"):
        flicker(WhiteBox(toy_model), videos[0], labels[:1])
    with pytest.raises(ValueError, match="eps"):
        flicker(WhiteBox(toy_model), videos[:1], labels[:1], eps=-0.1)
    with pytest.raises(ValueError, match="select"):
        flicker(WhiteBox(toy_model), videos[:1], labels[:1], select="best")


def test_registry_entry_runs(toy_model, toy_data) -> None:
    videos, labels = toy_data
    assert "flicker" in methods.names()
    assert {"steps", "lam", "beta1", "beta2", "margin"} <= set(methods.parameters("flicker"))
    result = methods.run(
        "flicker", toy_model, videos[:1], labels[:1], params={"steps": 100, "lr": 2e-2, "patience": 10}
    )
    assert result.method == "flicker"
    assert len(result.extras) == 1  # one entry per video, also for one video
    assert result.extras[0]["offsets"].shape == (videos.shape[1], 3)
    assert isinstance(result.extras[0]["delta_thickness"], float)
