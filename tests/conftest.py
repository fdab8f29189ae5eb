"""Shared fixtures: a tiny video classifier the tests train themselves on a toy temporal task.

The toy task: a bright square moves right (class 0), left (class 1) or stays (class 2) over noise.
It needs temporal reasoning, trains in about a second on CPU, and gives attacks a real decision
boundary to cross without depending on the shipped zoo.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

# One thread: the tests are many small ops, for which thread start-up costs more than it saves.
torch.set_num_threads(1)


def make_toy_videos(n: int, *, frames: int = 8, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` toy clips ``[n, frames, 3, size, size]`` in [0, 1] and their labels ``[n]`` (3 classes)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    videos = torch.rand(n, frames, 3, size, size, generator=generator) * 0.3
    for i in range(n):
        row = int(torch.randint(2, size - 6, (1,), generator=generator))
        start = int(torch.randint(2, size - 6, (1,), generator=generator))
        speed = {0: 1, 1: -1, 2: 0}[int(labels[i])]
        for t in range(frames):
            col = (start + speed * t) % (size - 4)
            videos[i, t, :, row : row + 4, col : col + 4] = 0.9
    return videos.clamp(0, 1), labels


class ToyNet(nn.Module):
    """A tiny 3D CNN over ``[N,T,C,H,W]`` videos in [0, 1]."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
            nn.Conv3d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1),
        )
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.permute(0, 2, 1, 3, 4)).flatten(1))


@pytest.fixture(scope="session")
def toy_model() -> ToyNet:
    """A ToyNet trained to high accuracy on the toy task (deterministic)."""
    with torch.random.fork_rng():  # fixed initial weights without touching the global generator
        torch.manual_seed(0)
        model = ToyNet()
    videos, labels = make_toy_videos(240, seed=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        permutation = torch.randperm(len(videos), generator=torch.Generator().manual_seed(_))
        for start in range(0, len(videos), 48):
            index = permutation[start : start + 48]
            loss = nn.functional.cross_entropy(model(videos[index]), labels[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    test, test_labels = make_toy_videos(60, seed=2)
    with torch.no_grad():
        accuracy = (model(test).argmax(1) == test_labels).float().mean().item()
    assert accuracy >= 0.9, f"toy model failed to train (accuracy {accuracy:.2f})"
    return model


@pytest.fixture(scope="session")
def toy_data(toy_model: ToyNet) -> tuple[torch.Tensor, torch.Tensor]:
    """Correctly classified toy test videos ``[6, 8, 3, 16, 16]`` and their labels."""
    videos, labels = make_toy_videos(30, seed=3)
    with torch.no_grad():
        keep = toy_model(videos).argmax(1) == labels
    return videos[keep][:6], labels[keep][:6]


class Counting(nn.Module):
    """Wraps a model and counts every clip it runs (``clips``); declares ``num_classes`` when given,
    as a deployed model's metadata would (then threat models need no probe forward)."""

    def __init__(self, model: nn.Module, num_classes: int | None = None) -> None:
        super().__init__()
        self.model, self.clips = model, 0
        if num_classes is not None:
            self.num_classes = num_classes

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        self.clips += len(videos)
        return self.model(videos)


def benchmark_script(name: str) -> Iterator[ModuleType]:
    """``benchmarks/NAME.py`` loaded as a module for a test (generator for a fixture): registered in
    ``sys.modules`` while it is used, as its dataclasses look their module up while it loads."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny random LRCN checkpoint and an .npz clip (no label) it accepts, for command-line tests.

    (A random tiny C3D is nearly constant in its input, so PGD could not move it; the LRCN is not.)
    """
    from vidattack import io, models

    directory = tmp_path_factory.mktemp("cli")
    net = models.build("lrcn", num_classes=5, width=0.25, dropout=0.0, num_frames=4, input_size=(16, 16), seed=0)
    models.save(net, directory / "tiny")
    video = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    io.save_npz(directory / "clip.npz", video=video)
    with torch.no_grad():
        prediction = int(net(video.unsqueeze(0)).argmax(1))
    return {"model": str(directory / "tiny"), "video": str(directory / "clip.npz"), "pred": str(prediction)}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``vidattack ARGS`` in-process: ``(exit code, stdout, stderr)``."""
    from vidattack.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
