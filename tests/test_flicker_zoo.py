"""Flickering attack on a shipped test-bed model (c3d-synth): the acceptance protocol on one clip.

The clip is test-bed test clip 6 (class 9), the first correctly classified class-9 test clip, which
``benchmarks/bench_flicker_art.py`` and ``benchmarks/results_flicker.md`` use; vidattack's flicker fools it
in a few dozen Adam steps at the paper's settings, so the test stays short.
"""

from __future__ import annotations

import torch

from vidattack import WhiteBox, metrics, models
from vidattack.attacks.flicker import flicker
from vidattack.data.synthetic import SynthConfig, generate


def test_flicker_fools_a_zoo_c3d_clip_with_one_offset_per_frame() -> None:
    net = models.load("c3d-synth").eval()
    clips = generate("test", SynthConfig(), indices=[6])
    video, label = clips.videos, clips.labels
    with torch.no_grad():
        assert int(net(video).argmax(1)[0]) == int(label[0]) == 9  # correctly classified before
    result = flicker(WhiteBox(net), video, label, steps=300, patience=20)
    assert bool(result.success[0])
    with torch.no_grad():
        assert int(net(result.adversarial).argmax(1)[0]) != 9
    offsets = result.extras[0]["offsets"]
    assert offsets.shape == (16, 3)
    # The applied perturbation is the offset of its frame and channel wherever clipping did not bite.
    expected = (video + offsets[None, :, :, None, None]).clamp(0, 1)
    assert torch.allclose(result.adversarial, expected, atol=1e-6)
    thickness = float(metrics.thickness(video, result.adversarial)[0])
    assert 0 < thickness <= float(result.extras[0]["delta_thickness"]) + 1e-4  # clipping only shrinks it
