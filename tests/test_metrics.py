import math

import pytest
import torch

from vidattack import metrics


def pair():
    """A clean video of 0.5 and a perturbation on frames 0 and 2 only (T=4, C=3, H=W=2)."""
    clean = torch.full((1, 4, 3, 2, 2), 0.5)
    delta = torch.zeros_like(clean)
    delta[0, 0, :, 0, 0] = 0.1  # one pixel, all channels
    delta[0, 2, 1, 1, 1] = -0.2  # one pixel, one channel
    return clean, clean + delta


def test_aggregates():
    assert metrics.success_rate([True, False, True, True]) == 0.75
    assert metrics.anq([10, 99, 30, 50], [True, False, True, True]) == 30.0
    assert metrics.mq([10, 99, 30, 50], [True, False, True, True]) == 30.0
    assert metrics.mq([10, 20, 40, 50], [True] * 4) == 30.0
    assert math.isnan(metrics.anq([5], [False]))
    assert math.isnan(metrics.success_rate([]))


def test_map_and_map_star():
    clean, adv = pair()
    total = (3 * 0.1 + 0.2) * 255  # sum of |delta| on the 0-255 scale
    assert metrics.map_255(clean, adv).item() == pytest.approx(total / 48, rel=1e-5)
    # perturbed region: 2 pixels x 3 channels
    assert metrics.map_star_255(clean, adv).item() == pytest.approx(total / 6, rel=1e-5)
    mask = torch.zeros(1, 4, 1, 2, 2)
    mask[0, :2] = 1  # frames 0 and 1: 8 pixels, 24 values, holding 0.3 of the perturbation
    assert metrics.map_star_255(clean, adv, mask).item() == pytest.approx(0.3 * 255 / 24, rel=1e-5)


def test_sparsities():
    clean, adv = pair()
    assert metrics.frame_sparsity(clean, adv).item() == pytest.approx(0.5)
    assert metrics.pixel_sparsity(clean, adv).item() == pytest.approx(1 - 2 / 16)
    assert metrics.frame_sparsity(clean, clean).item() == 1.0


def test_thickness_and_cyclic_roughness():
    clean = torch.full((1, 4, 3, 2, 2), 0.5)
    offsets = torch.tensor([0.1, 0.0, 0.0, -0.1])  # per frame, same for every pixel and channel
    adv = clean + offsets.reshape(1, 4, 1, 1, 1)
    assert metrics.thickness(clean, adv).item() == pytest.approx(0.05 * 100, rel=1e-5)
    # cyclic differences: 0.1-(-0.1)=0.2, -0.1, 0, -0.1 -> mean |.| = 0.1
    assert metrics.roughness(clean, adv).item() == pytest.approx(0.1 * 100, rel=1e-5)


def test_norms():
    clean, adv = pair()
    norms = metrics.lp_norms(clean, adv)
    assert norms["l0"].item() == 4
    assert norms["l2"].item() == pytest.approx(math.sqrt(3 * 0.01 + 0.04), rel=1e-5)
    assert norms["linf"].item() == pytest.approx(0.2, rel=1e-5)
    per_frame = metrics.frame_norms(clean, adv)
    assert per_frame["l0"].tolist() == [[3, 0, 1, 0]]
    assert per_frame["linf"][0].tolist() == pytest.approx([0.1, 0, 0.2, 0], abs=1e-6)
    assert per_frame["map"][0, 0].item() == pytest.approx(0.3 * 255 / 12, rel=1e-5)


def test_summary_has_every_metric_and_shape_mismatch_errors():
    clean, adv = pair()
    summary = metrics.summarize(clean, adv)
    assert set(summary) >= {"linf", "l2", "map", "map_star", "frame_sparsity", "pixel_sparsity", "thickness", "roughness"}
    with pytest.raises(ValueError, match="same shape"):
        metrics.map_255(clean, adv[:, :2])
