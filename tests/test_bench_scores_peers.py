"""benchmarks/bench_scores_peers.py: every model is attacked on clips of the test bed it was trained on."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import benchmark_script
from vidattack.data.synthetic import SynthClips


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_script("bench_scores_peers")


class _ReadsItsLabel(nn.Module):
    """Predicts the class written into pixel (0, 0, 0, 0) of a clip (class / 10), but class 1 always wrong."""

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        classes = (videos[:, 0, 0, 0, 0] * 10).round().long()
        classes = torch.where(classes == 1, torch.zeros_like(classes), classes)
        return nn.functional.one_hot(classes, 4).float()


def _clips(bed: str, labels: list[int]) -> SynthClips:
    videos = torch.full((len(labels), 2, 3, 4, 4), 0.5 if bed == "scene" else 0.9)
    videos[:, 0, 0, 0, 0] = torch.tensor(labels, dtype=torch.float32) / 10
    return SynthClips(videos=videos, labels=torch.tensor(labels), appearance=torch.zeros(len(labels), dtype=torch.long))


def test_each_model_gets_its_beds_clips_and_attacker_data(bench, monkeypatch):
    loaded: list[tuple[str, str]] = []

    def load_split(split, config):
        loaded.append((split, config.bed))
        return _clips(config.bed, [3, 1, 0, 3, 2])

    monkeypatch.setattr(bench, "load_split", load_split)
    splits: dict[str, SynthClips] = {}
    net = _ReadsItsLabel()
    videos, labels, data = bench.bed_clips("lrcn-scene", net, "val", 10, splits)
    assert data.config.bed == "scene" and data.image_models == ("image-small-scene", "image-small2-scene")
    assert labels.tolist() == [3, 0, 2]  # the first correct clip of each class, in the split's order; 1 never correct
    assert torch.all(videos[:, 1] == 0.5)  # the scene bed's clips
    videos, labels, data = bench.bed_clips("c3d-synth", net, "val", 2, splits)
    assert data.config.bed == "motion" and labels.tolist() == [3, 0] and torch.all(videos[:, 1] == 0.9)
    bench.bed_clips("i3d-scene", net, "val", 10, splits)
    assert loaded == [("val", "scene"), ("val", "motion")]  # each bed's split loaded once


def _outcome(bench, queries: list[int], success: list[bool]):
    return bench.Outcome(success=torch.tensor(success), queries=torch.tensor(queries), adversarial=torch.zeros(0),
                         wall=1.0, total_queries=sum(queries))  # fmt: skip


def test_success_curves_are_pooled_over_seeds_and_compared_at_every_count(bench):
    fast = [_outcome(bench, [10, 300, 900], [True, True, False]), _outcome(bench, [20, 50, 900], [True] * 3)]
    slow = [_outcome(bench, [40, 200, 900], [True, False, False]), _outcome(bench, [60, 900, 900], [True, True, False])]
    assert bench.success_within(fast, 9) == 0.0
    assert bench.success_within(fast, 50) == pytest.approx(3 / 6)
    assert bench.success_within(fast, 900) == pytest.approx(5 / 6)  # a failure never counts, whatever it spent
    assert bench.first_shortfall(fast, slow) is None
    # a run that fools all its clips at 30 puts fast behind from 30 queries (2 of 6 against 3 of 6)
    quick = [_outcome(bench, [30, 30, 30], [True] * 3), _outcome(bench, [900, 900, 900], [False] * 3)]
    assert bench.first_shortfall(fast, quick) == 30
