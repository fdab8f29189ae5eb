"""The scene test bed: deterministic, same motions as the motion bed, and a look that tells the class
well but not perfectly."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from vidattack.data.references import load_video_any
from vidattack.data.scene import CLASS_OBJECTS, SCENE, look
from vidattack.data.synthetic import MOTION_CLASSES, SynthConfig, generate, load_split
from vidattack.methods.attacker_data import SyntheticAttackerData, open_attacker_data

SMALL = SynthConfig(frames=8, size=24, n_train=40, n_val=20, n_test=30, bed="scene")


def test_shapes_range_and_quantisation():
    clips = generate("train", SMALL)
    assert clips.videos.shape == (40, 8, 3, 24, 24) and clips.videos.dtype == torch.float32
    assert float(clips.videos.min()) >= 0.0 and float(clips.videos.max()) <= 1.0
    levels = clips.videos * 255
    assert torch.equal(levels, levels.round())
    assert clips.class_names == MOTION_CLASSES
    assert generate("test", SCENE, indices=[0]).videos.shape == (1, 16, 3, 32, 32)


def test_deterministic_per_clip_and_seed_dependent():
    whole = generate("test", SMALL, indices=range(12))
    alone = generate("test", SMALL, indices=[7])
    assert torch.equal(whole.videos[7], alone.videos[0])
    assert torch.equal(whole.videos, generate("test", SMALL, indices=range(12)).videos)
    other = generate("test", SynthConfig(frames=8, size=24, seed=1, bed="scene"), indices=range(12))
    assert not torch.equal(whole.videos, other.videos)
    assert not torch.equal(whole.videos, generate("val", SMALL, indices=range(12)).videos)


def test_same_labels_as_motion_bed_but_a_different_look():
    motion = generate("test", SynthConfig(frames=8, size=24), indices=range(20))
    scene = generate("test", SMALL, indices=range(20))
    assert torch.equal(motion.labels, scene.labels)
    assert not torch.equal(motion.videos, scene.videos)


def test_split_cache_round_trips(tmp_path):
    first = load_split("val", SMALL, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith("scene-val-")
    assert torch.equal(first.videos, load_split("val", SMALL, cache_dir=tmp_path).videos)


def test_look_predicts_the_class_well_but_not_perfectly():
    # The best possible guess of the class from the hidden (style, object) pair, measured on 3000 clips
    # (optimistic: the majority class of each cell is chosen on the same clips).
    labels = generate("train", SynthConfig(frames=2, size=8, n_train=3000, clutter=False, bed="scene")).labels
    cells: dict[tuple[int, int], Counter] = {}
    for index, label in enumerate(labels.tolist()):
        cells.setdefault(look(SCENE, "train", index, label), Counter())[label] += 1
    best = sum(counter.most_common(1)[0][1] for counter in cells.values()) / len(labels)
    assert 0.6 < best < 0.95
    own_object = sum(look(SCENE, "train", i, y)[1] == CLASS_OBJECTS[y] for i, y in enumerate(labels.tolist()))
    assert 0.5 < own_object / len(labels) < 0.75


def _colour_features(videos: torch.Tensor) -> torch.Tensor:
    frame = videos[:, 0]  # one frame: no motion information
    return torch.cat((frame.mean(dim=(2, 3)), frame.std(dim=(2, 3))), dim=1)


def test_a_per_frame_colour_statistic_beats_chance_clearly_but_is_not_perfect():
    config = SynthConfig(n_train=600, n_val=300, bed="scene")
    train, val = generate("train", config), generate("val", config)
    x_train, x_val = _colour_features(train.videos), _colour_features(val.videos)
    mean, std = x_train.mean(0), x_train.std(0)
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    centroids = torch.stack([x_train[train.labels == c].mean(0) for c in range(len(MOTION_CLASSES))])
    predicted = torch.cdist(x_val, centroids).argmin(1)
    accuracy = float((predicted == val.labels).float().mean())
    assert 0.3 < accuracy < 0.9  # chance is 0.1
    # On the motion bed the same statistic is at chance: the look there says nothing about the class.
    motion = SynthConfig(n_train=600, n_val=300)
    m_train, m_val = generate("train", motion), generate("val", motion)
    f_train, f_val = (_colour_features(m_train.videos) - mean) / std, (_colour_features(m_val.videos) - mean) / std
    m_centroids = torch.stack([f_train[m_train.labels == c].mean(0) for c in range(len(MOTION_CLASSES))])
    m_accuracy = float((torch.cdist(f_val, m_centroids).argmin(1) == m_val.labels).float().mean())
    assert m_accuracy < 0.2


def test_scene_is_reachable_by_reference_attacker_data_and_config():
    with pytest.raises(ValueError, match="bed"):
        SynthConfig(bed="nope")
    video, label = load_video_any("scene:test:3")
    clip = generate("test", SCENE, indices=[3])
    assert torch.equal(video, clip.videos[0]) and label == int(clip.labels[0])
    motion_video, _ = load_video_any("synth:test:3")
    assert not torch.equal(video, motion_video)
    attacker = open_attacker_data("scene")
    assert attacker.config.bed == "scene" and attacker.image_models == ("image-small-scene", "image-small2-scene")
    assert attacker.description == "scene:train"
    assert SyntheticAttackerData.for_model("c3d-scene").config.bed == "scene"
    assert SyntheticAttackerData.for_model("c3d-synth").image_models == ("image-small-synth", "image-small2-synth")


def test_campaign_data_table_selects_the_scene_bed(tmp_path):
    from vidattack.campaign.config import load_config
    from vidattack.campaign.sources import open_source

    path = tmp_path / "c.toml"
    path.write_text(
        'name = "x"\nmodels = ["c3d-synth"]\n[data]\nsource = "synthetic"\nsplit = "test"\nbed = "scene"\n'
        '[[attacks]]\nname = "pbad"\n'
    )
    config = load_config(path)
    assert config.data.synth == {"bed": "scene"} and config.data.name == "scene-test"
    source = open_source(config.data)
    videos, labels = source.load([3])
    assert torch.equal(videos[0], generate("test", SCENE, indices=[3]).videos[0])
    assert source.video_id(3) == "scene:test:3"


def test_scene_zoo_models_are_evaluated_on_scene_from_the_command_line(capsys):
    import json

    from vidattack.cli import main

    def run(args: list[str]) -> dict:
        try:
            main(args)
        except SystemExit as stop:
            assert stop.code in (0, None)
        return json.loads(capsys.readouterr().out)

    video = run(["eval", "--model", "c3d-scene", "--data", "scene", "--clips", "20", "--json"])
    assert video["n"] == 20 and video["accuracy"] > 0.5
    # The scene image backbones predict the clip's class from single frames.
    image = run(["eval", "--model", "image-small-scene", "--data", "scene", "--clips", "10", "--json"])
    assert image["n"] == 160 and image["accuracy"] > 0.3
