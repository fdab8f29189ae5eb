"""The sparse attack from the command line: `vidattack attack sparse` and `vidattack sparse-universal`."""

from __future__ import annotations

import json

import pytest
import torch

from vidattack.cli import main


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny untrained CNN+LSTM checkpoint for 4-frame 16x16 clips (10 classes, like the test bed)."""
    from vidattack.models import build, save

    model = build(
        "lrcn",
        num_classes=10,
        width=4,
        feature_dim=16,
        hidden_size=16,
        grid=2,
        seed=0,
        num_frames=4,
        input_size=(16, 16),
    )
    stem = tmp_path_factory.mktemp("ckpt") / "tiny"
    save(model.eval(), stem)
    return str(stem) + ".safetensors"


def test_attack_sparse_with_mask_param(tiny_checkpoint, capsys):
    main(
        [
            "attack",
            "sparse",
            "--model",
            tiny_checkpoint,
            "--video",
            "synth:test:0",
            "--label",
            "0",
            "--param",
            "mask=first:2",
            "--param",
            "norm=l21",
            "--param",
            "steps=5",
            "--json",
        ]
    )
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "sparse"
    if record["status"] != "clean-misclassified":
        assert record["frame_sparsity"] >= 0.5  # frames 2 and 3 are outside the mask


def test_sparse_universal_command_writes_outputs(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "universal"
    main(
        [
            "sparse-universal",
            "--model",
            tiny_checkpoint,
            "--data",
            "synth",
            "--mask",
            "first:2",
            "--train",
            "3",
            "--test",
            "2",
            "--epochs",
            "2",
            "--lr-end",
            "0.5",
            "--out",
            str(out),
            "--json",
        ]
    )
    record = json.loads(capsys.readouterr().out)
    assert record["n_train"] == 3 and record["perturbed_frames"] == 2 and record["frames"] == 4
    assert record["lr_end"] == 0.5
    assert (
        (out / "universal.npz").is_file()
        and (out / "result.json").is_file()
        and (out / "profile.png").is_file()
    )
    from vidattack.io import load_npz

    saved = load_npz(out / "universal.npz")
    assert tuple(saved["perturbation"].shape) == (4, 3, 16, 16)
    assert torch.all(saved["perturbation"][2:] == 0)


def test_universal_experiments_ask_a_foreign_model_for_its_data(tiny_checkpoint, tmp_path, capsys):
    from conftest import run_cli

    for command in ("sparse-universal", "flicker-universal"):
        code, _, error = run_cli([command, "--model", tiny_checkpoint, "--out", str(tmp_path / command)], capsys)
        assert code == 2 and "--data is required" in error and "does not substitute its test bed" in error
        assert not (tmp_path / command).exists()  # refused before anything was written


def test_sparse_universal_learns_on_a_data_set_folder(tiny_checkpoint, tmp_path, capsys):
    from conftest import run_cli
    from vidattack.data.folders import CorruptVideoWarning
    from vidattack.data.synthetic import SynthConfig, write_layout

    root = write_layout(tmp_path / "hmdb", "hmdb51", SynthConfig(frames=4, size=16), limit_per_split=30)
    split_file = sorted((root / "testTrainMulti_7030_splits").glob("*_test_split1.txt"))[0]
    name = next(line.split()[0] for line in split_file.read_text().splitlines() if line.endswith(" 1"))  # train
    class_folder = root / split_file.name.removesuffix("_test_split1.txt")
    (class_folder / name).write_bytes(b"not a video")  # a real download has a few of these
    out = tmp_path / "universal"
    with pytest.warns(CorruptVideoWarning, match="skipping unreadable video"):
        code, printed, _ = run_cli(["sparse-universal", "--model", tiny_checkpoint, "--data", str(root), "--train",
                                    "3", "--test", "2", "--epochs", "1", "--out", str(out), "--json"], capsys)  # fmt: skip
    record = json.loads(printed)
    assert code == 0 and record["data"] == str(root) and record["n_train"] <= 3
    # the indices are positions in the folder's split: every one names a decodable clip of it
    assert all(0 <= index < 30 for index in record["train_indices"] + record["test_indices"])
