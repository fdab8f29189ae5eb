"""Training and evaluation (on the toy temporal task of conftest.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import make_toy_videos
from vidattack.models import build, evaluate, train
from vidattack.models.train import translate_augment, video_frames

TINY_C3D = {"width": 1 / 16, "fc_dim": 16, "fc_pool": [1, 1, 1], "batch_norm": True, "dropout": 0.0}


def _toy_c3d(seed: int = 0) -> nn.Module:
    return build("c3d", class_names=["right", "left", "still"], seed=seed, **TINY_C3D)


def test_training_improves_accuracy_and_keeps_best_epoch() -> None:
    train_data = make_toy_videos(96, seed=10)
    val_data = make_toy_videos(45, seed=11)
    model = _toy_c3d()
    before = evaluate(model, val_data)["accuracy"]
    report = train(model, train_data, val_data, epochs=6, lr=1e-2, batch_size=16, seed=0, progress=False)
    after = evaluate(model, val_data)["accuracy"]
    assert after >= 0.8 and after > before + 0.3, (before, after)
    assert not model.training
    assert len(report.history) == 6 and report.epochs == 6
    best = max(h["val_accuracy"] for h in report.history)
    assert report.best_val_accuracy == pytest.approx(best)
    assert report.history[report.best_epoch - 1]["val_accuracy"] == pytest.approx(best)
    assert after == pytest.approx(best)  # the kept weights are the best epoch's


def test_training_is_deterministic_and_leaves_global_rng() -> None:
    data = make_toy_videos(24, seed=12)
    state = torch.random.get_rng_state()
    models = []
    for _ in range(2):
        model = _toy_c3d(seed=1)
        train(
            model, data, epochs=1, lr=1e-2, batch_size=8, seed=5, progress=False, augment=translate_augment()
        )
        models.append(model)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_train_accepts_a_dataset() -> None:
    videos, labels = make_toy_videos(12, seed=13)
    dataset = torch.utils.data.TensorDataset(videos, labels)
    model = _toy_c3d()
    report = train(model, dataset, dataset, epochs=1, batch_size=5, progress=False)
    assert report.best_val_accuracy == evaluate(model, (videos, labels))["accuracy"]


class _LookupModel(nn.Module):
    """Predicts ``predictions[i]`` for an input whose pixels all equal ``i / 100``."""

    def __init__(self, predictions: list[int], classes: int) -> None:
        super().__init__()
        self.predictions = torch.tensor(predictions)
        self.classes = classes
        self.class_names = ["cat", "dog", "eel"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (x.flatten(1)[:, 0] * 100).round().long()
        return nn.functional.one_hot(self.predictions[index], self.classes).float()


def test_evaluate_counts_by_hand() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    predictions = [0, 0, 1, 1, 2, 0]  # class 0: 2/3, class 1: 1/2, class 2: 0/1
    inputs = torch.arange(6, dtype=torch.float32).div(100).view(6, 1, 1, 1, 1).expand(6, 2, 3, 4, 4)
    result = evaluate(_LookupModel(predictions, 3), (inputs, labels), batch_size=4)
    assert result["n"] == 6 and result["correct"] == 3
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["per_class"] == pytest.approx({"cat": 2 / 3, "dog": 0.5, "eel": 0.0})
    assert result["per_class_n"] == {"cat": 3, "dog": 2, "eel": 1}
    named = evaluate(_LookupModel(predictions, 3), (inputs, labels), class_names=["x", "y", "z"])
    assert set(named["per_class"]) == {"x", "y", "z"}


def test_evaluate_rejects_bad_data() -> None:
    model = _toy_c3d()
    with pytest.raises(ValueError, match="labels must be integers"):
        evaluate(model, (torch.rand(2, 4, 3, 8, 8), torch.tensor([0.0, 1.0])))
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, (torch.rand(0, 4, 3, 8, 8), torch.zeros(0, dtype=torch.long)))


def test_translate_augment_shifts_whole_clips_and_keeps_range() -> None:
    # A dot moving right through the middle of the frame; no flips, one shift per clip.
    videos = torch.full((6, 6, 3, 16, 16), 0.2)
    for t in range(6):
        videos[:, t, :, 8, 5 + t] = 0.9
    out = translate_augment(max_shift=2, brightness=0.1)(videos, torch.Generator().manual_seed(0))
    assert out.shape == videos.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.equal(out, videos)
    for clip in out:
        where = [divmod(int(frame.mean(dim=0).argmax()), 16) for frame in clip]
        shifts = {(row - 8, col - 5 - t) for t, (row, col) in enumerate(where)}
        assert len(shifts) == 1, where  # every frame moved by the same offset: motion is intact
        (dy, dx) = shifts.pop()
        assert abs(dy) <= 2 and abs(dx) <= 2


def test_video_frames() -> None:
    videos = torch.rand(3, 5, 3, 4, 4)
    labels = torch.tensor([2, 0, 1])
    images, image_labels = video_frames(videos, labels)
    assert images.shape == (15, 3, 4, 4) and image_labels.tolist() == [2] * 5 + [0] * 5 + [1] * 5
    images, image_labels = video_frames(
        videos, labels, per_clip=2, generator=torch.Generator().manual_seed(0)
    )
    assert images.shape == (6, 3, 4, 4) and image_labels.tolist() == [2, 2, 0, 0, 1, 1]
    assert any(torch.equal(images[0], frame) for frame in videos[0])


def test_cli_train_eval_models(tmp_path, capsys) -> None:
    """`vidattack train` writes a checkpoint that `vidattack eval` reads; `vidattack models --json` lists the zoo."""
    import json

    from vidattack.cli import main

    stem = tmp_path / "tiny"
    args = ["train", "--arch", "c3d", "--data", "synth", "--clips", "20", "--frames", "4", "--size", "16"]
    args += ["--epochs", "1", "--width", "0.0625", "-p", "fc_dim=8", "-p", "batch_norm=true", "--no-progress"]
    main([*args, "--out", str(stem), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert (tmp_path / "tiny.safetensors").is_file() and report["epochs"] == 1
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["arch_kwargs"]["fc_dim"] == 8 and meta["input"]["frames"] == 4
    assert set(meta["accuracy"]) == {"val", "test", "test_shuffled"}

    main(["eval", "--model", str(stem), "--data", "synth", "--split", "val", "--clips", "20", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 20 and result["accuracy"] == meta["accuracy"]["val"]
    assert len(result["per_class"]) == 10

    main(["models", "--json"])
    assert isinstance(json.loads(capsys.readouterr().out), list)


@pytest.mark.parametrize("layout", ["ucf101", "hmdb51"])
def test_eval_folder_data_uses_the_model_class_order(tmp_path, layout: str) -> None:
    """Folder layouts name classes differently (TranslateLeft / translate_left); labels follow the model."""
    from vidattack.cli.commands_models import _folder_data
    from vidattack.data.synthetic import MOTION_CLASSES, SynthConfig, load_split, write_layout

    config = SynthConfig(frames=4, size=16, n_train=0, n_val=0, n_test=12)
    write_layout(tmp_path, layout, config, splits=("test",), limit_per_split=12)
    clips = load_split("test", config)
    stream, class_names = _folder_data(f"{layout}:{tmp_path}", "test", 4, 16, list(MOTION_CLASSES))
    items = list(stream)
    assert len(items) == 12 and len(class_names) == 10
    for video, label in items:
        matches = [i for i in range(12) if torch.equal(video, clips.videos[i])]
        assert matches and all(int(clips.labels[i]) == label for i in matches)
