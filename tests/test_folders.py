"""Real data-set layouts, exercised on the synthetic test bed written as video files."""

from __future__ import annotations

import warnings

import pytest
import torch
from typer.testing import CliRunner

from vidattack.data.folders import HMDB51, UCF101, CorruptVideoWarning, Kinetics, MissingVideoWarning
from vidattack.data.synthetic import MOTION_CLASSES, SynthConfig, generate, layout_class_names, write_layout
from vidattack.sampling import (
    centre_snippet_indices,
    random_snippet_indices,
    sample_indices,
    uniform_indices,
)

CONFIG = SynthConfig(frames=6, size=16, seed=3)
LIMIT = 20  # clips per split: two per class
SMALL_LIMIT = 10  # one per class


def expected(split: str, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    clips = generate(split, CONFIG, indices=range(limit))
    return clips.videos, clips.labels


def match_items(dataset, split, layout, limit=LIMIT):
    """Map every dataset item back to its generated clip (FFV1 is lossless, so pixels are equal) and
    check the dataset's label names the clip's motion class."""
    videos, labels = expected(split, limit)
    names = layout_class_names(layout)
    matched = []
    for video, label in dataset.iter_valid():
        assert video.shape == (CONFIG.frames, 3, CONFIG.size, CONFIG.size)
        hits = [i for i in range(limit) if torch.equal(videos[i], video)]
        assert len(hits) == 1
        assert names[int(labels[hits[0]])] == dataset.class_names[label]
        matched.append(hits[0])
    return matched


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory):
    return write_layout(tmp_path_factory.mktemp("ucf") / "UCF-101", "ucf101", CONFIG, limit_per_split=LIMIT)


def test_ucf101_layout_files(ucf_root):
    lists = ucf_root / "ucfTrainTestlist"
    assert (lists / "classInd.txt").read_text().splitlines()[0] == "1 TranslateLeft"
    train_lines = (lists / "trainlist01.txt").read_text().splitlines()
    test_lines = (lists / "testlist01.txt").read_text().splitlines()
    assert len(train_lines) == LIMIT and len(test_lines) == LIMIT
    path, label = train_lines[0].split()
    class_name = path.split("/")[0]
    assert path.startswith(f"{class_name}/v_{class_name}_g") and path.endswith(".avi")
    assert int(label) == layout_class_names("ucf101").index(class_name) + 1
    assert all(len(line.split()) == 1 for line in test_lines)
    groups = {int(line.split("_g")[1][:2]) for line in test_lines}
    assert groups <= set(range(1, 8))  # official split 1: test groups 1-7


@pytest.mark.parametrize("train", [True, False])
def test_ucf101_dataset_matches_generated(ucf_root, train):
    dataset = UCF101(ucf_root, train=train, frames=CONFIG.frames, size=(CONFIG.size, CONFIG.size))
    assert dataset.class_names == layout_class_names("ucf101")
    assert len(dataset) == LIMIT
    assert sorted(match_items(dataset, "train" if train else "test", "ucf101")) == list(range(LIMIT))


def test_ucf101_resizes_and_samples(ucf_root):
    dataset = UCF101(ucf_root, frames=4, size=(8, 12), sampling="centre")
    video, label = dataset[0]
    assert video.shape == (4, 3, 8, 12) and 0 <= label < 10
    random = UCF101(
        ucf_root, frames=3, size=None, sampling="random", generator=torch.Generator().manual_seed(0)
    )
    assert random[1][0].shape == (3, 3, CONFIG.size, CONFIG.size)
    strided = UCF101(ucf_root, frames=3, size=None, sampling="centre", stride=2)
    full = UCF101(ucf_root, frames=CONFIG.frames, size=None)
    assert torch.equal(strided[2][0], full[2][0][[0, 2, 4]])  # 6 frames: centred span of 5, stride 2

    def broken(video):
        raise ValueError("bug in the transform")

    with pytest.raises(ValueError, match="bug in the transform"):
        UCF101(ucf_root, frames=2, size=None, transform=broken)[0]


def test_ucf101_errors(tmp_path, ucf_root):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        UCF101(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="ucfTrainTestlist"):
        UCF101(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="testlist02.txt"):
        UCF101(ucf_root, fold=2)
    with pytest.raises(ValueError, match="fold"):
        UCF101(ucf_root, fold=4)
    with pytest.raises(FileNotFoundError, match="none of the"):
        UCF101(tmp_path / "empty", split_dir=ucf_root / "ucfTrainTestlist")


def test_hmdb51_dataset_with_corrupt_and_missing_file(tmp_path):
    root = write_layout(
        tmp_path / "hmdb51", "hmdb51", CONFIG, splits=("train", "val", "test"), limit_per_split=SMALL_LIMIT
    )
    lists = root / "testTrainMulti_7030_splits"
    split_file = lists / "rotate_cw_test_split1.txt"
    ids = [line.split()[1] for line in split_file.read_text().splitlines()]
    assert sorted(set(ids)) == ["0", "1", "2"]
    assert len(list(lists.glob("*_test_split1.txt"))) == 10

    # Default order is sorted class names; classes= restores the test bed's order.
    default = HMDB51(root, frames=CONFIG.frames, size=None)
    assert default.class_names == tuple(sorted(MOTION_CLASSES))
    dataset = HMDB51(root, frames=CONFIG.frames, size=None, classes=MOTION_CLASSES)
    assert len(dataset) == SMALL_LIMIT
    assert sorted(match_items(dataset, "test", "hmdb51", SMALL_LIMIT)) == list(range(SMALL_LIMIT))

    # Corrupt one file: the dataset warns naming it and moves on.
    victim, victim_label = dataset.samples[3]
    victim.write_bytes(b"\x00garbage" * 100)
    with pytest.warns(CorruptVideoWarning, match=victim.name):
        video, label = dataset[3]
    assert torch.equal(video, dataset.load(4)[0]) and label == dataset.samples[4][1]
    assert victim in dataset.corrupt
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known corrupt file is skipped silently afterwards
        items = list(dataset.iter_valid())
    assert len(items) == SMALL_LIMIT - 1
    strict = HMDB51(root, frames=CONFIG.frames, size=None, on_error="raise")
    strict_index = [path for path, _ in strict.samples].index(victim)
    with pytest.raises(ValueError, match=victim.name):
        strict[strict_index]

    # A missing file is dropped at construction with one warning.
    dataset.samples[5][0].unlink()
    with pytest.warns(MissingVideoWarning, match=f"1 of {SMALL_LIMIT}"):
        fewer = HMDB51(root, frames=CONFIG.frames, size=None)
    assert len(fewer) == SMALL_LIMIT - 1

    train = HMDB51(root, train=True, frames=CONFIG.frames, size=None, classes=MOTION_CLASSES)
    assert sorted(match_items(train, "train", "hmdb51", SMALL_LIMIT)) == list(range(SMALL_LIMIT))


def test_hmdb51_errors(tmp_path):
    (tmp_path / "root" / "testTrainMulti_7030_splits").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="_test_split1.txt"):
        HMDB51(tmp_path / "root")
    (tmp_path / "root" / "testTrainMulti_7030_splits" / "jump_test_split1.txt").write_text("a.avi 7\n")
    with pytest.raises(ValueError, match="malformed"):
        HMDB51(tmp_path / "root")


def test_kinetics_dataset(tmp_path):
    root = write_layout(
        tmp_path / "k", "kinetics", CONFIG, splits=("train", "val"), limit_per_split=SMALL_LIMIT
    )
    header = (root / "annotations" / "validate.csv").read_text().splitlines()[0]
    assert header == "label,youtube_id,time_start,time_end,split,is_cc"
    dataset = Kinetics(root, root / "annotations" / "validate.csv", "val", frames=CONFIG.frames, size=None)
    assert dataset.class_names == tuple(sorted(layout_class_names("kinetics")))
    assert sorted(match_items(dataset, "val", "kinetics", SMALL_LIMIT)) == list(range(SMALL_LIMIT))
    ordered = Kinetics(
        root,
        root / "annotations" / "train.csv",
        "train",
        frames=CONFIG.frames,
        size=None,
        classes=layout_class_names("kinetics"),
    )
    assert sorted(match_items(ordered, "train", "kinetics", SMALL_LIMIT)) == list(range(SMALL_LIMIT))
    with pytest.raises(ValueError, match="no rows with split 'test'"):
        Kinetics(root, root / "annotations" / "train.csv", "test")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        Kinetics(root, root / "nope.csv", "train")
    (tmp_path / "bad.csv").write_text("youtube_id,time_start,time_end,split\nabc,0,10,test\n")
    with pytest.raises(ValueError, match="label"):
        Kinetics(root, tmp_path / "bad.csv", "test")


def test_write_layout_rejects_val_for_ucf(tmp_path):
    with pytest.raises(ValueError, match="train and test"):
        write_layout(tmp_path, "ucf101", CONFIG, splits=("val",))
    with pytest.raises(ValueError, match="layout"):
        write_layout(tmp_path, "something", CONFIG)


def test_sampling_indices():
    assert uniform_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 2, 2]
    assert uniform_indices(9, 1).tolist() == [4]
    assert centre_snippet_indices(20, 4).tolist() == [8, 9, 10, 11]
    assert centre_snippet_indices(20, 4, stride=2).tolist() == [6, 8, 10, 12]
    assert centre_snippet_indices(3, 5).tolist() == uniform_indices(3, 5).tolist()
    snippet = random_snippet_indices(50, 16, generator=torch.Generator().manual_seed(0))
    assert snippet.tolist() == list(range(int(snippet[0]), int(snippet[0]) + 16)) and int(snippet[-1]) < 50
    with pytest.raises(ValueError, match="mode"):
        sample_indices(10, 4, "middle")
    with pytest.raises(ValueError, match="num_frames"):
        sample_indices(0, 4)


def test_cli_write_synth(tmp_path):
    import typer

    from vidattack.cli.commands_data import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    register(app)
    runner = CliRunner()
    help_result = runner.invoke(app, ["data", "write-synth", "--help"])
    assert help_result.exit_code == 0 and "--layout" in help_result.output
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        [
            "data",
            "write-synth",
            "--out",
            str(out),
            "--layout",
            "hmdb51",
            "--frames",
            "4",
            "--size",
            "12",
            "--limit",
            "10",
            "--split",
            "test",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*/*.avi"))) == 10
    dataset = HMDB51(out, frames=4, size=None)
    assert len(dataset) == 10 and dataset[0][0].shape == (4, 3, 12, 12)
    bad = runner.invoke(app, ["data", "write-synth", "--out", str(out), "--layout", "ucf"])
    assert bad.exit_code != 0
