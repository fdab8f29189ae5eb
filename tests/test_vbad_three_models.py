"""V-BAD with the paper's three-model image ensemble (issue 23): the zoo's third image backbone, chosen
in campaign configs with ``image_models`` while every default stays the two-model ensemble."""

from __future__ import annotations

from pathlib import Path

import torch

from vidattack import methods
from vidattack import models as zoo
from vidattack.campaign import item_seed, load_config
from vidattack.methods import SyntheticAttackerData
from vidattack.methods.model_refs import load_image_models

ROOT = Path(__file__).resolve().parent.parent
THREE = ("image-small-synth", "image-small2-synth", "image-small3-synth")


def test_third_image_backbone_is_a_different_small_net_with_the_same_interface() -> None:
    backbones = load_image_models(list(THREE))
    sizes = [sum(p.numel() for p in m.parameters()) for m in backbones]
    assert len(set(sizes)) == 3  # three different nets, as the paper's ResNet-50 / DenseNet-121 / -169
    frames = torch.rand(2, 3, 32, 32)
    for backbone in backbones:
        with torch.no_grad():
            assert backbone(frames).shape == (2, 16)  # the appearance task's 16 objects
            assert backbone.features(frames, backbone.feature_layers[0]).shape[0] == 2  # V-BAD's first block
    assert (zoo.ZOO_DIR / "image-small3-synth.safetensors").stat().st_size < 1_000_000
    row = {r["name"]: r for r in zoo.list_models()}["image-small3-synth"]
    assert row["kind"] == "image" and row["test_accuracy"] > 0.5


def test_defaults_keep_two_image_models() -> None:
    assert SyntheticAttackerData.image_models == THREE[:2]
    assert SyntheticAttackerData.for_model("lrcn-synth").image_models == THREE[:2]


def test_three_model_config_chooses_the_ensemble_and_its_control_pairs_every_seed() -> None:
    three = load_config(ROOT / "configs" / "vbad_table4_lrcn_3models.toml")
    two = load_config(ROOT / "configs" / "vbad_table4_lrcn_2models.toml")
    by_label = {attack.label: attack for attack in three.attacks}
    for label in ("V-BAD", "V-BAD as written"):
        assert tuple(by_label[label].params["image_models"]) == THREE
    for attack in two.attacks:
        assert "image_models" not in attack.params and attack.label in by_label
        # Same seed per clip in both campaigns: the third model is the only difference.
        assert item_seed(two.seed, two.data.name, "lrcn-synth", attack.label, 456) == item_seed(
            three.seed, three.data.name, "lrcn-synth", attack.label, 456
        )


def test_vbad_runs_with_the_three_model_ensemble_on_a_zoo_video() -> None:
    from vidattack.data.synthetic import SynthConfig, generate

    model = zoo.load("lrcn-synth").eval()
    clip = generate("test", SynthConfig(), indices=[3])
    result = methods.run(
        "vbad", model, clip.videos, clip.labels, eps=0.05, budget=300, seed=0,
        params={"image_models": ",".join(THREE)}, attacker_data=SyntheticAttackerData.for_model("lrcn-synth"),
    )  # fmt: skip
    extras = result.extras[0]  # per video
    assert extras["image_models"].split(",") == list(THREE)
    assert int(result.queries[0]) <= 300
    assert float((result.adversarial - clip.videos).abs().max()) <= 0.05 + 1e-6
