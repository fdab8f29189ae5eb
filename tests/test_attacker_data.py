"""Attacker data is an input: methods take start videos, initial directions and target clips from the
data the user gives (here a class-folder data set written by the test), and never substitute the test
bed for a model that was not trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import Counting, ToyNet, make_toy_videos
from vidattack import io, methods
from vidattack.data.folders import ClassFolders
from vidattack.methods import AttackerDataRequired, FolderAttackerData, TensorAttackerData
from vidattack.video import to_float, to_uint8

CLASSES = ("left", "right", "still")  # sorted folder names; the toy task's labels are 1, 0, 2
FOLDER_LABEL = {0: 1, 1: 0, 2: 2}  # toy label -> folder label (classes sorted by name)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``root/{train,test}/{left,right,still}/clipNN.mkv``: toy clips written losslessly."""
    root = tmp_path_factory.mktemp("classfolders")
    names = {0: "right", 1: "left", 2: "still"}
    for split, count, seed in (("train", 36, 11), ("test", 9, 12)):
        videos, labels = make_toy_videos(count, seed=seed)
        for i, (video, label) in enumerate(zip(videos, labels.tolist(), strict=True)):
            directory = root / split / names[label]
            directory.mkdir(parents=True, exist_ok=True)
            io.write_lossless(directory / f"clip{i:02d}.mkv", video)
    return root


def _decoded(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = ClassFolders(root, split=split, frames=8, size=(16, 16), on_error="raise")
    pairs = [dataset.load(i) for i in range(len(dataset))]
    return torch.stack([v for v, _ in pairs]), torch.tensor([label for _, label in pairs])


@pytest.fixture(scope="module")
def folder_model(folder) -> nn.Module:
    """A ToyNet trained on the folder's training split (as decoded from the files)."""
    videos, labels = _decoded(folder, "train")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ToyNet()
    extra, extra_labels = make_toy_videos(240, seed=1)  # more clips of the same task, relabelled like the folder
    videos = torch.cat([videos, to_float(to_uint8(extra))])
    labels = torch.cat([labels, torch.tensor([FOLDER_LABEL[int(y)] for y in extra_labels])])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(60):
        order = torch.randperm(len(videos), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, len(videos), 48):
            index = order[start : start + 48]
            loss = nn.functional.cross_entropy(model(videos[index]), labels[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


class Spy(FolderAttackerData):
    """Records every clip the methods take from the attacker data."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, split="train")
        self.taken: list[torch.Tensor] = []

    def pool(self, count, shape):
        videos, labels = super().pool(count, shape)
        self.taken.append(videos)
        return videos, labels

    def clips_of_class(self, cls, count, shape, generator):
        videos = super().clips_of_class(cls, count, shape, generator)
        self.taken.append(videos)
        return videos


def _from_split(clips: torch.Tensor, split: tuple[torch.Tensor, torch.Tensor]) -> list[int]:
    """For each clip, the label of the identical clip in ``split`` (error if there is none)."""
    videos, labels = split
    found = []
    for clip in clips:
        hits = [i for i in range(len(videos)) if torch.equal(videos[i], clip)]
        assert hits, "a clip the method used is not in the attacker's training split"
        found.append(int(labels[hits[0]]))
    return found


@pytest.fixture(scope="module")
def victim(folder, folder_model) -> tuple[torch.Tensor, torch.Tensor]:
    """A correctly classified clip of the folder's *test* split."""
    videos, labels = _decoded(folder, "test")
    with torch.no_grad():
        keep = folder_model(videos).argmax(1) == labels
    assert bool(keep.any())
    return videos[keep][:1], labels[keep][:1]


def test_targeted_vbad_starts_from_the_folder_training_clips_of_the_target(folder, folder_model, victim) -> None:
    video, label = victim
    target = (int(label[0]) + 1) % 3
    spy = Spy(folder)
    result = methods.run("vbad", folder_model, video, label, target=torch.tensor([target]), budget=200,
                         params={"patches": 4}, attacker_data=spy)  # fmt: skip
    assert len(spy.taken) == 1 and len(spy.taken[0]) >= 1
    assert set(_from_split(spy.taken[0], _decoded(folder, "train"))) == {target}
    assert int(result.queries[0]) <= 200
    # no image models came with the folder: V-BAD ran with the static tentative and says so
    assert result.extras[0]["tentative"] == "static" and "no image models" in result.extras[0]["method_notes"]


@pytest.mark.parametrize("method", ["opt", "heuristic"])
def test_initial_directions_come_from_the_folder_training_split(folder, folder_model, victim, method) -> None:
    video, label = victim
    spy = Spy(folder)
    result = methods.run(method, folder_model, video, label, budget=300, params={"num_init": 3}, attacker_data=spy)
    train = _decoded(folder, "train")
    used = _from_split(spy.taken[0], train)
    assert len(used) == min(30, len(train[1])) and set(used) == {0, 1, 2}  # classes interleaved
    assert int(result.queries[0]) <= 300


def test_sva_target_clips_come_from_the_folder(folder, folder_model, victim) -> None:
    video, label = victim
    target = (int(label[0]) + 2) % 3
    spy = Spy(folder)
    methods.run("sva-norl", folder_model, video, label, target=torch.tensor([target]), eps=0.2, budget=60,
                params={"population": 8}, attacker_data=spy)  # fmt: skip
    assert len(spy.taken) == 1
    _from_split(spy.taken[0], _decoded(folder, "train"))  # every clip is one of the training split's


@pytest.mark.parametrize(
    ("method", "targeted", "params"),
    [
        ("vbad", True, {"patches": 4}),
        ("vsquare", True, {}),
        ("opt", False, {}),
        ("heuristic", False, {}),
        ("sva", True, {"population": 8}),
        ("sval", False, {"population": 8}),
    ],
)
def test_no_attacker_data_fails_before_any_query(folder_model, victim, method, targeted, params) -> None:
    video, label = victim
    counting = Counting(folder_model)
    target = torch.tensor([(int(label[0]) + 1) % 3]) if targeted else None
    with pytest.raises(AttackerDataRequired, match="--attacker-data"):
        methods.run(method, counting, video, label, target=target, budget=100, params=params)
    assert counting.clips == 0


def test_random_initial_directions_are_an_explicit_choice(folder_model, victim) -> None:
    video, label = victim
    result = methods.run("opt", folder_model, video, label, budget=200, params={"init": "random", "num_init": 3})
    assert "random" in result.extras[0]["method_notes"] and int(result.queries[0]) <= 200


def test_tensor_and_npz_attacker_data(tmp_path, folder) -> None:
    videos, labels = _decoded(folder, "train")
    data = TensorAttackerData(videos, labels)
    pool, pool_labels = data.pool(6, (8, 3, 16, 16))
    assert pool_labels.tolist()[:3] == [0, 1, 2]  # interleaved
    # clips are resampled to the attacked shape
    assert data.pool(2, (4, 3, 12, 12))[0].shape == (2, 4, 3, 12, 12)
    io.save_npz(tmp_path / "mine.npz", videos=to_uint8(videos), labels=labels)
    loaded = methods.open_attacker_data(tmp_path / "mine.npz")
    assert torch.equal(loaded.clips_of_class(2, 50, (8, 3, 16, 16), torch.Generator()).sort(0)[0],
                       videos[labels == 2].sort(0)[0])  # fmt: skip
    with pytest.raises(ValueError, match="--attacker-data"):
        methods.open_attacker_data(tmp_path / "absent")
    with pytest.raises(ValueError, match="labels"):
        TensorAttackerData(videos, labels[:-1])
