"""Sparse l2,1 attack on the shipped lrcn-synth (CNN + LSTM): l2,1 empties frames, l2 does not.

Test-bed test clip 5 is the first correctly classified class-0 clip of lrcn-synth (the clip of class 0 in
``benchmarks/bench_sparse.py sparsity``); at the default lambda both regularisers fool it, and the l2,1
perturbation leaves many more frames below half a grey level than the l2 one
(``benchmarks/results_sparse.md``).
"""

from __future__ import annotations

import pytest
import torch

from vidattack import WhiteBox, models
from vidattack.attacks.sparse_l21 import NEAR_ZERO, sparse_l21
from vidattack.data.synthetic import SynthConfig, generate


@pytest.mark.slow
def test_l21_gives_near_zero_frames_on_lrcn_where_l2_gives_few() -> None:
    net = models.load("lrcn-synth").eval()
    clips = generate("test", SynthConfig(), indices=[5])
    video, label = clips.videos, clips.labels
    with torch.no_grad():
        assert int(net(video).argmax(1)[0]) == int(label[0]) == 0
    wb = WhiteBox(net)
    near = {}
    for norm in ("l21", "l2"):
        result = sparse_l21(wb, video, label, norm=norm, steps=300)
        assert bool(result.success[0]), norm
        frame_max = (result.adversarial - video).abs().flatten(2).amax(2)[0]
        near[norm] = int((frame_max < NEAR_ZERO).sum())
        assert float(result.adversarial.min()) >= 0 and float(result.adversarial.max()) <= 1
    assert near["l21"] >= 4 and near["l2"] < near["l21"], near
