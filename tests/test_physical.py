"""Over-the-air channel simulation and light-schedule export."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from vidattack import physical as P
from vidattack.attacks.flicker import apply_flicker, roll_offsets

DELTA = torch.tensor([[0.1, 0.0, -0.1], [0.2, 0.1, 0.0], [-0.1, 0.05, 0.1], [0.0, -0.2, 0.05]])


def test_ideal_channel_equals_digital_flicker() -> None:
    videos = torch.rand(2, 4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    params = P.ChannelParams.fixed(2)
    assert torch.allclose(P.apply_channel(videos, DELTA, params), apply_flicker(videos, DELTA), atol=1e-6)


def test_start_phase_of_whole_frames_is_a_roll() -> None:
    params = P.ChannelParams.fixed(1, phase=2 * 4, oversample=4)  # two frames late
    assert torch.allclose(P.light_response(DELTA, params)[0], roll_offsets(DELTA, 2), atol=1e-6)


def test_low_pass_smooths_and_keeps_mean() -> None:
    slow = P.ChannelParams.fixed(1, rise=2.0)
    seen = P.light_response(DELTA, slow)[0]
    # a first-order filter keeps the DC level of the looped schedule and lowers the frame-to-frame jumps
    assert torch.allclose(seen.mean(dim=0), DELTA.mean(dim=0), atol=1e-5)
    assert float((roll_offsets(seen, 1) - seen).abs().mean()) < float(
        (roll_offsets(DELTA, 1) - DELTA).abs().mean()
    )


def test_crosstalk_gain_and_precompensation_invert() -> None:
    crosstalk = torch.tensor([[1.0, 0.1, 0.0], [0.05, 1.0, 0.1], [0.0, 0.2, 1.0]])
    gain = (0.8, 1.0, 0.9)
    params = P.ChannelParams.fixed(1, crosstalk=crosstalk, gain=gain)
    drive = P.precompensate(DELTA, crosstalk, gain)
    assert torch.allclose(P.light_response(drive, params)[0], DELTA, atol=1e-5)


def test_reflectance_makes_offset_scale_with_pixel() -> None:
    videos = torch.stack([torch.full((4, 3, 2, 2), 0.2), torch.full((4, 3, 2, 2), 0.6)])  # no clipping
    params = P.ChannelParams.fixed(2, reflectance=1.0, reflect_gain=2.0)
    out = P.apply_channel(videos, DELTA, params)
    offset = out - videos
    # purely multiplicative: offset = k * x * delta, three times larger on the brighter video
    assert torch.allclose(offset[1], 3 * offset[0], atol=1e-6)


def test_random_channel_is_seeded_differentiable_and_valid() -> None:
    videos = torch.rand(3, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    ranges = P.ChannelRanges()
    draw = ranges.sample(3, frames=4, generator=torch.Generator().manual_seed(5))
    again = ranges.sample(3, frames=4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(draw.phase, again.phase) and torch.equal(draw.crosstalk, again.crosstalk)
    delta = DELTA.clone().requires_grad_(True)
    out = P.apply_channel(videos, delta, draw, generator=torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1
    out.sum().backward()
    assert delta.grad is not None and torch.isfinite(delta.grad).all()
    with pytest.raises(ValueError, match="reflectance"):
        P.ChannelRanges(reflectance=(0.0, 2.0))


def test_over_the_air_fooling_on_toy(toy_model, toy_data) -> None:
    videos, labels = toy_data
    delta = torch.zeros(videos.shape[1], 3)
    scores = P.over_the_air_fooling(
        toy_model,
        delta,
        videos,
        labels,
        P.ChannelRanges(noise=(0.0, 0.0)),
        draws=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert scores["trials"] == 2 * videos.shape[0]
    assert scores["fooling_ratio"] == scores["clean_error"]  # zero schedule: attack = clean


def test_export_schedule(tmp_path) -> None:
    paths = P.export_schedule(DELTA, tmp_path, fps=25, baseline=0.5, loops=2)
    with open(paths["csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    assert float(rows[1]["time_s"]) == pytest.approx(0.04)
    assert float(rows[5]["r"]) == pytest.approx(0.7)  # frame 1 of loop 2: 0.5 + 0.2
    assert int(rows[3]["g8"]) == round(0.3 * 255)
    document = json.loads(open(paths["json"]).read())
    assert document["fps"] == 25 and document["frames"] == 4 and len(document["rows"]) == 8
    with pytest.raises(ValueError, match="fps"):
        P.light_schedule(DELTA, fps=0)
    with pytest.raises(ValueError, match="stem"):
        P.export_schedule(DELTA, tmp_path, stem="../x")
