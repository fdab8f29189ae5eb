"""Generalised flicker perturbations: universal / time-invariant training, evaluation, baselines, transfer."""

from __future__ import annotations

import pytest
import torch

from vidattack.attacks import flicker_universal as U
from vidattack.attacks.flicker import roll_offsets


class ShiftProbe(torch.nn.Module):
    """A fake 2-class model that records every input and calls a video adversarial only when frame 0's
    red offset is large: lets a test see exactly which shifts of delta were evaluated."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        red0 = x[:, 0, 0].mean(dim=(-2, -1)) - 0.5
        return torch.stack([torch.zeros_like(red0), (red0 - 0.05) * 100], dim=1)


def test_time_invariant_evaluation_covers_every_shift() -> None:
    frames = 5
    videos = torch.full((2, frames, 3, 4, 4), 0.5)
    labels = torch.zeros(2, dtype=torch.long)
    delta = torch.zeros(frames, 3)
    delta[2, 0] = 0.2  # only the shift that brings frame 2 to frame 0 fools the probe
    probe = ShiftProbe()
    result = U.fooling_ratio(probe, delta, videos, labels, all_shifts=True)
    assert result["per_shift"].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert result["fooling_ratio"] == pytest.approx(1 / frames)
    assert result["n"] == 2 * frames
    assert result["worst_shift"] == 0.0
    # every cyclic shift of delta reached the model exactly once per video
    offsets_seen = {
        tuple((x[0, :, :, 0, 0] - 0.5).flatten().round(decimals=4).tolist()) for x in probe.seen[1:]
    }
    expected = {tuple(roll_offsets(delta, tau).flatten().round(decimals=4).tolist()) for tau in range(frames)}
    assert offsets_seen == expected
    plain = U.fooling_ratio(probe, delta, videos, labels)
    assert plain["fooling_ratio"] == 0.0


def test_random_baselines_keep_range_and_values() -> None:
    delta = torch.linspace(-0.1, 0.2, 24).reshape(8, 3)
    generator = torch.Generator().manual_seed(0)
    uniform = U.random_like(delta, "uniform", generator)
    assert uniform.min() >= -0.1 - 1e-7 and uniform.max() <= 0.2 + 1e-7 and uniform.shape == delta.shape
    minmax = U.random_like(delta, "minmax", generator)
    assert all(abs(v + 0.1) < 1e-6 or abs(v - 0.2) < 1e-6 for v in minmax.flatten().tolist())
    shuffled = U.random_like(delta, "shuffle", generator)
    assert torch.equal(shuffled.flatten().sort().values, delta.flatten().sort().values)
    assert not torch.equal(shuffled, delta)
    with pytest.raises(ValueError, match="kind"):
        U.random_like(delta, "gaussian")


def test_universal_training_respects_bound_and_beats_random(toy_model) -> None:
    from conftest import make_toy_videos

    videos, labels = make_toy_videos(48, seed=11)
    keep = U.correctly_classified(toy_model, videos, labels)
    videos, labels = videos[keep], labels[keep]
    generator = torch.Generator().manual_seed(0)
    trained = U.train_universal_flicker(
        toy_model, videos, labels, eps=0.3, epochs=3, lr=3e-2, generator=generator
    )
    assert trained.offsets.shape == (videos.shape[1], 3)
    assert float(trained.offsets.abs().max()) <= 0.3 + 1e-7
    assert len(trained.history) == 3 and trained.steps == 3 * ((videos.shape[0] + 7) // 8)
    scores = U.evaluate_flicker(toy_model, trained.offsets, videos, labels)
    assert scores["fooling_ratio"] > 0
    assert scores["thickness"] == pytest.approx(trained.thickness)
    baselines = U.baseline_fooling(toy_model, trained.offsets, videos, labels, repeats=2, generator=generator)
    assert set(baselines) == set(U.BASELINES)
    # the trained delta fools more than random deltas of the same l-inf (scores are in %: baselines too)
    assert all(100 * scores["fooling_ratio"] > row["mean"] for row in baselines.values())
    # same seed, same delta
    again = U.train_universal_flicker(
        toy_model, videos, labels, eps=0.3, epochs=3, lr=3e-2, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(again.offsets, trained.offsets)


def test_time_invariant_training_and_transfer(toy_model) -> None:
    from conftest import make_toy_videos

    videos, labels = make_toy_videos(24, seed=12)
    keep = U.correctly_classified(toy_model, videos, labels)
    videos, labels = videos[keep], labels[keep]
    trained = U.train_universal_flicker(
        toy_model,
        videos,
        labels,
        eps=0.2,
        epochs=1,
        time_invariant=True,
        generator=torch.Generator().manual_seed(1),
    )
    assert trained.mode == "time-invariant"
    scores = U.evaluate_flicker(toy_model, trained.offsets, videos, labels, all_shifts=True)
    assert len(scores["per_shift_fooling_ratio"]) == videos.shape[1]
    table = U.transfer_table({"toy": trained.offsets}, {"toy": toy_model}, {"toy": (videos, labels)})
    assert table["toy"]["toy"] == pytest.approx(
        U.evaluate_flicker(toy_model, trained.offsets, videos, labels)["fooling_ratio"]
    )


def test_class_generalisation_reports_per_class(toy_model) -> None:
    from conftest import make_toy_videos

    train, train_labels = make_toy_videos(18, seed=13)
    test, test_labels = make_toy_videos(9, seed=14)
    summary = U.train_class_flickers(
        toy_model,
        train,
        train_labels,
        test,
        test_labels,
        classes=[0, 1],
        epochs=1,
        eps=0.1,
        generator=torch.Generator().manual_seed(0),
    )
    assert set(summary["per_class"]) == {0, 1}
    assert 0 <= summary["fooling_ratio_mean"] <= 100


def test_cli_flicker_universal_writes_delta_schedule_and_summary(toy_model, tmp_path, monkeypatch) -> None:
    import json

    import numpy as np

    from conftest import make_toy_videos
    from vidattack import models
    from vidattack.cli import main

    train, train_labels = make_toy_videos(12, seed=21)
    test, test_labels = make_toy_videos(6, seed=22)
    data = tmp_path / "data.npz"
    np.savez(
        data,
        train_videos=train.numpy(),
        train_labels=train_labels.numpy(),
        test_videos=test.numpy(),
        test_labels=test_labels.numpy(),
    )
    monkeypatch.setattr(models, "load", lambda name, device=None: toy_model)
    out = tmp_path / "run"
    main(  # returns normally on success (errors exit with status 2)
        [
            "flicker-universal",
            "--model",
            "toy",
            "--mode",
            "time-invariant",
            "--data",
            str(data),
            "--epochs",
            "1",
            "--repeats",
            "1",
            "--linf",
            "0.1",
            "--out",
            str(out),
            "--json",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "time-invariant" and summary["linf"] == 0.1
    assert len(summary["per_shift_fooling_ratio"]) == train.shape[1]
    assert set(summary["baselines"]) == set(U.BASELINES)
    for name in ("delta.npz", "schedule.csv", "schedule.json", "flicker.png"):
        assert (out / name).is_file()
    with np.load(out / "delta.npz") as archive:
        assert archive["offsets"].shape == (train.shape[1], 3)
        assert np.abs(archive["offsets"]).max() <= 0.1 + 1e-7


def test_uint8_npz_data_reaches_the_model_in_0_1(tmp_path, toy_model):
    # Regression: the loader converted to float before checking for uint8, so 0-255 values went in.
    import numpy as np

    from vidattack.experiments.clips import correct_clips
    from vidattack.video import to_uint8

    seen = []

    def recording(videos):
        seen.append(float(videos.max()))
        return toy_model(videos)

    videos, labels = toy_data_for_npz()
    np.savez(tmp_path / "d.npz", train_videos=to_uint8(videos).numpy(), train_labels=labels.numpy())
    loaded, _, _ = correct_clips(str(tmp_path / "d.npz"), "train", 4, recording, "cpu")
    assert max(seen) <= 1.0 and float(loaded.max()) <= 1.0 and loaded.dtype == torch.float32


def toy_data_for_npz():
    from conftest import make_toy_videos

    return make_toy_videos(8, seed=5)
