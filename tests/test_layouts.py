"""A user's data-set folder in any layout, labels in the model's class order (vidattack.data.layouts)."""

from __future__ import annotations

import json
import shutil
import types
import warnings

import pytest
import torch

from conftest import run_cli
from vidattack.campaign.config import DataConfig
from vidattack.campaign.sources import FolderSource
from vidattack.data.layouts import class_of_path, detect_layout, kinetics_csv, model_class_order, open_folder
from vidattack.data.synthetic import MOTION_CLASSES, SynthConfig, generate, write_layout
from vidattack.evaluation.robustness import open_clips
from vidattack.methods import FolderAttackerData

CONFIG = SynthConfig(frames=6, size=16, seed=3)
LIMIT = 10  # clips per split: one per class


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, object]:
    """The test bed's first clips written in each layout (FFV1: read back exactly)."""
    base = tmp_path_factory.mktemp("layouts")
    return {
        layout: write_layout(base / layout, layout, CONFIG, splits=("train", "test"), limit_per_split=LIMIT)
        for layout in ("ucf101", "hmdb51", "kinetics")
    }


def label_pairs(dataset, split: str) -> list[tuple[int, int]]:
    """``(label the folder gives, motion class of the generated clip)`` for every item (equal pixels)."""
    clips = generate(split, CONFIG, indices=range(LIMIT))
    pairs = []
    for video, label in dataset.iter_valid():
        hits = [i for i in range(LIMIT) if torch.equal(clips.videos[i], video)]
        assert len(hits) == 1
        pairs.append((label, int(clips.labels[hits[0]])))
    return pairs


def test_model_class_order():
    # matched up to case, "_", "-" and spaces; spelled as the folder spells its classes
    assert model_class_order(["Jump", "apply_eye_makeup"], ["apply eye makeup", "jump"]) == ("apply_eye_makeup", "Jump")
    # a folder with a subset of the model's classes: the model's other names are kept
    assert model_class_order(["b", "A"], ["a", "B", "c"]) == ("A", "b", "c")
    # folders named by class index against a remote model's placeholder names: "10" is class 10, not 2
    assert model_class_order(["0", "1", "10", "2"], list(range(11)))[10] == "10"
    assert model_class_order(["a", "z"], ["a", "b"]) is None  # a class the model does not have
    assert model_class_order(["a"], None) is None
    assert model_class_order(["a_b", "ab"], ["ab", "c"]) is None  # two folder classes with one key


@pytest.mark.parametrize("layout", ["ucf101", "hmdb51", "kinetics"])
def test_labels_are_the_model_classes(roots, layout):
    root = roots[layout]
    assert detect_layout(root) == layout
    for split in ("train", "test"):
        dataset = open_folder(root, split, frames=CONFIG.frames, size=None, model_classes=MOTION_CLASSES)
        pairs = label_pairs(dataset, split)
        assert len(pairs) == LIMIT
        assert all(label == motion for label, motion in pairs)
    # without the model's names the folder's own order holds: sorted names differ from the test bed's
    own = label_pairs(open_folder(root, "test", frames=CONFIG.frames, size=None), "test")
    assert any(label != motion for label, motion in own) == (layout != "ucf101")


def test_flat_kinetics_and_plain_class_folders(roots, tmp_path):
    flat = tmp_path / "k400"
    (flat / "test").mkdir(parents=True)
    shutil.copytree(roots["kinetics"] / "annotations", flat / "annotations")
    for path in (roots["kinetics"] / "test").rglob("*.mkv"):  # the CVDF downloader's flat layout
        shutil.copy(path, flat / "test" / path.name)
    assert detect_layout(flat) == "kinetics"
    dataset = open_folder(flat, "test", frames=CONFIG.frames, size=None, model_classes=MOTION_CLASSES)
    assert all(label == motion for label, motion in label_pairs(dataset, "test"))

    plain = tmp_path / "plain"
    shutil.copytree(roots["kinetics"] / "test", plain / "test")  # ROOT/SPLIT/CLASS/*.mkv
    assert detect_layout(plain) == "folders"
    dataset = open_folder(plain, "test", frames=CONFIG.frames, size=None, model_classes=MOTION_CLASSES)
    assert all(label == motion for label, motion in label_pairs(dataset, "test"))
    with pytest.raises(ValueError, match="has no train split"):
        open_folder(plain, "train", frames=CONFIG.frames, size=None)


def test_open_folder_errors(roots, tmp_path):
    with pytest.raises(ValueError, match="train and test splits only"):
        open_folder(roots["ucf101"], "val", frames=CONFIG.frames, size=None)
    with pytest.raises(ValueError, match=r"no annotation CSV for the val split .*test\.csv"):
        kinetics_csv(roots["kinetics"], "val")
    with pytest.raises(ValueError, match="layout must be one of"):
        open_folder(roots["ucf101"], "test", frames=CONFIG.frames, size=None, layout="ucf")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        open_folder(tmp_path / "missing", "test", frames=CONFIG.frames, size=None)
    others = [f"class{i}" for i in range(10)]
    with pytest.raises(ValueError, match="10 classes, the model 3"):
        open_folder(roots["hmdb51"], "test", frames=CONFIG.frames, size=None, model_classes=others[:3])
    with pytest.warns(UserWarning, match="labels follow the data set's own order"):
        open_folder(roots["hmdb51"], "test", frames=CONFIG.frames, size=None, model_classes=others)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a remote model's placeholder names 0..K-1: no warning
        open_folder(roots["hmdb51"], "test", frames=CONFIG.frames, size=None, model_classes=list(range(10)))


def test_attacker_data_clips_are_of_the_model_class(roots):
    train = generate("train", CONFIG, indices=range(LIMIT))
    shape = (CONFIG.frames, 3, CONFIG.size, CONFIG.size)

    def motion_class(clip: torch.Tensor) -> int:
        return int(train.labels[[torch.equal(video, clip) for video in train.videos].index(True)])

    aligned = FolderAttackerData(roots["hmdb51"], split="train", model_classes=MOTION_CLASSES)
    own = FolderAttackerData(roots["hmdb51"], split="train")
    generator = torch.Generator().manual_seed(0)
    wrong = 0
    for cls in range(len(MOTION_CLASSES)):
        (clip,) = aligned.clips_of_class(cls, 1, shape, generator)
        assert motion_class(clip) == cls  # a targeted attack starts from a clip of the class the model means
        (clip,) = own.clips_of_class(cls, 1, shape, generator)
        wrong += motion_class(clip) != cls
    assert wrong > 0  # the folder's sorted order alone would have handed out other classes


def test_evaluation_and_campaign_sources_follow_the_model(roots):
    model = types.SimpleNamespace(class_names=list(MOTION_CLASSES), num_frames=CONFIG.frames, input_size=CONFIG.size)
    truth = generate("test", CONFIG, indices=range(LIMIT))

    def assert_true_labels(videos: torch.Tensor, labels: torch.Tensor) -> None:
        assert len(videos) == LIMIT
        for video, label in zip(videos, labels, strict=True):
            hit = [torch.equal(video, clip) for clip in truth.videos].index(True)
            assert int(label) == int(truth.labels[hit])

    source = open_clips(str(roots["kinetics"]), "test", model)  # vidattack evaluate --data
    assert_true_labels(*source.load(range(len(source))))
    assert source.labels == "the model's classes, matched by name"  # said in the report
    nameless = types.SimpleNamespace(class_names=None, num_frames=CONFIG.frames, input_size=CONFIG.size)
    assert "the model names no classes" in open_clips(str(roots["kinetics"]), "test", nameless).labels
    data = DataConfig(source="folder", split="test", root=str(roots["hmdb51"]), layout="hmdb51", folder={"fold": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # names that match: no warning
        campaign = FolderSource(data, frames=CONFIG.frames, size=CONFIG.size, model_classes=MOTION_CLASSES)
    assert campaign.class_names == MOTION_CLASSES
    assert_true_labels(*campaign.load(range(len(campaign))))


def test_a_file_in_a_class_folder_is_labelled_by_it(roots, capsys):
    assert class_of_path("data/ApplyEyeMakeup/v_1.avi", ["Jump", "apply_eye_makeup"]) == 1
    assert class_of_path("data/test/v_1.avi", ["Jump", "apply_eye_makeup"]) is None  # no class of that name
    assert class_of_path("data/Jump/v_1.avi", None) is None
    path = next((roots["hmdb51"] / "zoom_in").glob("*.avi"))
    code, out, _ = run_cli(["attack", "pgd", "--model", "c3d-synth", "--video", str(path), "--json"], capsys)
    record = json.loads(out)
    assert code == 0 and (record["label"], record["label_source"]) == (MOTION_CLASSES.index("zoom_in"), "folder")
