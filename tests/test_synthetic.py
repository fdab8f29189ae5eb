"""The synthetic motion test bed: determinism, shapes, labels, and that the class lives in the motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidattack.data.synthetic import (
    APPEARANCE_CLASSES,
    MOTION_CLASSES,
    SynthConfig,
    SyntheticVideoDataset,
    _clip_params,
    frame_shuffled,
    generate,
    layout_class_names,
    load_split,
)

SMALL = SynthConfig(frames=8, size=24, n_train=40, n_val=20, n_test=30)


def test_class_lists_are_stable():
    assert len(MOTION_CLASSES) == 10 and len(set(MOTION_CLASSES)) == 10
    assert MOTION_CLASSES[0] == "translate_left" and MOTION_CLASSES[-1] == "still"
    assert len(APPEARANCE_CLASSES) == 16 and APPEARANCE_CLASSES[:10] == tuple(f"digit_{d}" for d in range(10))


def test_shapes_dtype_range_and_quantisation():
    clips = generate("train", SMALL)
    assert clips.videos.shape == (40, 8, 3, 24, 24)
    assert clips.videos.dtype == torch.float32
    assert clips.labels.dtype == torch.long and clips.appearance.dtype == torch.long
    assert float(clips.videos.min()) >= 0.0 and float(clips.videos.max()) <= 1.0
    # Values are exact 8-bit levels, so a lossless file round-trips them.
    levels = clips.videos * 255
    assert torch.equal(levels, levels.round())
    assert len(clips) == 40 and clips.indices == tuple(range(40))
    assert clips.class_names == MOTION_CLASSES


def test_default_config_shape():
    clips = generate("test", indices=range(3))
    assert clips.videos.shape == (3, 16, 3, 32, 32)


def test_same_seed_same_clips_and_other_seed_differs():
    first = generate("test", SMALL, indices=range(6))
    again = generate("test", SMALL, indices=range(6))
    assert torch.equal(first.videos, again.videos)
    assert torch.equal(first.labels, again.labels)
    other = generate("test", SynthConfig(frames=8, size=24, seed=1), indices=range(6))
    assert not torch.equal(first.videos, other.videos)
    # Splits are independent streams too.
    train = generate("train", SMALL, indices=range(6))
    assert not torch.equal(first.videos, train.videos)


def test_clip_is_identical_alone_or_in_a_batch():
    batch = generate("val", SMALL, indices=range(20))
    for index in (0, 7, 19):
        alone = generate("val", SMALL, indices=[index])
        assert torch.equal(alone.videos[0], batch.videos[index])
        assert int(alone.labels[0]) == int(batch.labels[index])
        assert int(alone.appearance[0]) == int(batch.appearance[index])
    shifted = generate("val", SMALL, indices=range(5, 12))
    assert torch.equal(shifted.videos, batch.videos[5:12])


def test_labels_balanced_and_appearance_in_range():
    clips = generate("train", SMALL)
    counts = torch.bincount(clips.labels, minlength=10)
    assert torch.equal(counts, torch.full((10,), 4))  # 40 clips: every block of ten is a permutation
    assert int(clips.appearance.min()) >= 0 and int(clips.appearance.max()) < len(APPEARANCE_CLASSES)
    # Not the trivial i % 10 order.
    assert not torch.equal(clips.labels, torch.arange(40) % 10)


def test_appearance_labels_cover_classes_and_match_objects():
    labels = [int(_clip_params(SynthConfig(), "train", i)["appearance"]) for i in range(300)]
    assert set(labels) == set(range(len(APPEARANCE_CLASSES)))


def test_clean_clip_motion_directions():
    """With clutter off the foreground is the only thing that moves: check each motion's geometry."""
    config = SynthConfig(frames=8, size=32, clutter=False)
    clips = generate("test", config, indices=range(60))
    for video, label, index in zip(clips.videos, clips.labels, range(60), strict=True):
        params = _clip_params(config, "test", index)
        background = video[0, :, 0, 0]  # top-left corner: flat background colour
        mask = (video - background.view(1, 3, 1, 1)).abs().sum(1) > 0.05  # [T, H, W] object pixels
        assert bool(mask.any(dim=(1, 2)).all()), "object visible in every frame"
        name = MOTION_CLASSES[int(label)]
        if name.startswith("translate"):
            moved_x = params["cx"][-1] - params["cx"][0]
            moved_y = params["cy"][-1] - params["cy"][0]
            expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[name.split("_")[1]]
            assert np.sign(round(moved_x, 6)) == expected[0] and np.sign(round(moved_y, 6)) == expected[1]
            assert max(abs(moved_x), abs(moved_y)) * config.size / 2 >= 8  # >= 8 pixels at 32x32
        elif name.startswith("rotate"):
            turn = params["angle"][-1] - params["angle"][0]
            assert abs(turn) >= math.radians(90)
            assert (turn > 0) == (name == "rotate_cw")
        elif name.startswith("zoom"):
            area = mask.sum(dim=(1, 2)).float()
            ratio = params["scale"].max() / params["scale"].min()
            assert ratio >= 1.8
            assert (area[-1] > area[0]) == (name == "zoom_in")
        elif name == "still":
            assert torch.equal(video[0], video[-1])


@pytest.mark.parametrize("name", ["rotate_cw", "rotate_ccw"])
def test_rotation_direction_on_screen(name):
    """Measured on the rendered frames: the direction from the object's centre to its first-colour half
    turns clockwise on screen (atan2 with y down increases) for rotate_cw."""
    config = SynthConfig(frames=6, size=64, clutter=False)
    index = next(i for i in range(100) if MOTION_CLASSES[_clip_params(config, "test", i)["label"]] == name)
    params = _clip_params(config, "test", index)
    video = generate("test", config, indices=[index]).videos[0].double()
    colour_a = torch.from_numpy(params["colour_a"]).view(1, 3, 1, 1)
    colour_b = torch.from_numpy(params["colour_b"]).view(1, 3, 1, 1)
    background = video[0, :, 0, 0].view(1, 3, 1, 1)
    distance_bg = (video - background).abs().sum(1)
    near_a = (video - colour_a).abs().sum(1) < 0.15
    near_b = (video - colour_b).abs().sum(1) < 0.15
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    angles = []
    for t in range(config.frames):
        a, b = near_a[t] & (distance_bg[t] > 0.2), near_b[t] & (distance_bg[t] > 0.2)
        centre_a = torch.stack((xs[a].mean(), ys[a].mean()))
        centre_b = torch.stack((xs[b].mean(), ys[b].mean()))
        direction = centre_a - centre_b
        angles.append(math.atan2(float(direction[1]), float(direction[0])))
    steps = np.diff(np.unwrap(angles))
    assert (steps > 0).all() if name == "rotate_cw" else (steps < 0).all(), steps


def test_frame_shuffled_preserves_frames_and_input():
    clips = generate("test", SMALL, indices=range(4))
    original = clips.videos.clone()
    shuffled = frame_shuffled(clips.videos, torch.Generator().manual_seed(0))
    assert torch.equal(clips.videos, original)
    assert shuffled.shape == clips.videos.shape
    changed = False
    for clip, mixed in zip(clips.videos, shuffled, strict=True):
        key = lambda frames: sorted(tuple(f.flatten().tolist()[:64]) + (float(f.sum()),) for f in frames)  # noqa: E731
        assert key(clip) == key(mixed)
        changed |= not torch.equal(clip, mixed)
    assert changed
    single = frame_shuffled(clips.videos[0], torch.Generator().manual_seed(1))
    assert single.shape == clips.videos[0].shape
    again = frame_shuffled(clips.videos, torch.Generator().manual_seed(0))
    assert torch.equal(again, shuffled)


def test_frame_shuffled_rejects_bad_layout():
    with pytest.raises(ValueError, match="videos"):
        frame_shuffled(torch.zeros(3, 8, 8))


def test_dataset_and_cache(tmp_path):
    config = SynthConfig(frames=4, size=16, n_train=12, n_val=4, n_test=4)
    dataset = SyntheticVideoDataset("train", config, cache_dir=tmp_path)
    assert len(dataset) == 12 and dataset.class_names == MOTION_CLASSES
    video, label = dataset[3]
    clips = generate("train", config)
    assert torch.equal(video, clips.videos[3]) and label == int(clips.labels[3])
    assert list(tmp_path.glob("*.npz")), "split cached"
    cached = load_split("train", config, cache_dir=tmp_path)
    assert torch.equal(cached.videos, clips.videos)
    appearance = SyntheticVideoDataset("train", config, task="appearance", cache_dir=tmp_path)
    assert appearance[3][1] == int(clips.appearance[3]) and appearance.num_classes == 16


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        generate("training", SMALL)
    with pytest.raises(ValueError, match="frames"):
        SynthConfig(frames=1)
    with pytest.raises(ValueError, match="indices"):
        generate("test", SMALL, indices=[-1])
    with pytest.raises(ValueError, match="task"):
        SyntheticVideoDataset("test", SMALL, task="colour")
    with pytest.raises(ValueError, match="layout"):
        layout_class_names("ucf")


def test_layout_class_names():
    assert layout_class_names("ucf101")[0] == "TranslateLeft"
    assert layout_class_names("hmdb51") == MOTION_CLASSES
    assert layout_class_names("kinetics")[4] == "rotate cw"
