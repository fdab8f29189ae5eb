"""The shipped zoo: every model loads without code execution, and the motion models use motion.

These run the real shipped weights on real test-bed clips (the first 100 test clips), so a retrained or
broken zoo, or a changed test bed, shows up here rather than in an attack benchmark.
"""

from __future__ import annotations

import pytest
import torch

import vidattack as va
from vidattack import models
from vidattack.attacks.pgd import pgd
from vidattack.data.synthetic import frame_shuffled, generate
from vidattack.models.train import evaluate
from vidattack.models.zoo import ZOO_DIR, model_names

MOTION_MODELS = ("c3d-synth", "i3d-synth", "lrcn-synth")


@pytest.fixture(scope="module")
def test_clips():
    return generate("test", indices=range(100))


def test_every_zoo_model_loads_and_runs() -> None:
    for name in model_names():  # test_checkpoint checks that every expected model is shipped
        model = models.load(name)
        assert not model.training
        document = models.read_metadata(ZOO_DIR / name)
        assert 0.0 < document["accuracy"]["test"] <= 1.0
        frames, height, width = document["input"].get("frames"), document["input"]["height"], document["input"]["width"]
        shape = (2, 3, height, width) if frames is None else (2, frames, 3, height, width)
        with torch.no_grad():
            logits = model(torch.rand(*shape, generator=torch.Generator().manual_seed(0)))
        assert logits.shape == (2, len(document["class_names"])) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MOTION_MODELS)
def test_motion_models_are_accurate_and_need_frame_order(name: str, test_clips) -> None:
    model = models.load(name)
    accuracy = evaluate(model, (test_clips.videos, test_clips.labels))["accuracy"]
    shuffled = frame_shuffled(test_clips.videos, torch.Generator().manual_seed(0))
    shuffled_accuracy = evaluate(model, (shuffled, test_clips.labels))["accuracy"]
    assert accuracy >= 0.85, f"{name}: accuracy {accuracy:.2f} on the first 100 test clips"
    assert accuracy - shuffled_accuracy >= 0.4, f"{name}: {accuracy:.2f} intact vs {shuffled_accuracy:.2f} shuffled"


def test_pgd_fools_the_shipped_c3d(test_clips) -> None:
    model = models.load("c3d-synth")
    video, label = test_clips.videos[:1], test_clips.labels[:1]
    assert int(model(video).argmax(1)) == int(label)
    result = pgd(va.WhiteBox(model), video, label, eps=0.05)
    assert bool(result.success[0])
    assert float((result.adversarial - video).abs().max()) <= 0.05 + 1e-6
    assert int(model(result.adversarial).argmax(1)) != int(label)
