"""The attacker's own videos: what some attacks need besides the video they attack.

Targeted V-BAD starts from a video of the target class (Alg. 1); Opt-attack and the Heuristic attack
take their initial directions from videos of other classes (or of the target class); SVA draws target
clips for its targeted episodes and SVAL trains its agent offline on a pool of clips. In the papers
these come from the attacker's share of the data set (UCF-101 / HMDB-51 training videos), never from the
videos under attack. Here they come from an :class:`AttackerData` that the user gives explicitly
(``--attacker-data``, the campaign key ``attacker_data``, or the ``attacker_data`` argument of
:func:`vidattack.methods.run`):

* :class:`SyntheticAttackerData` -- the synthetic test bed's training split (the default for the zoo's
  models only, which were trained on it), with the zoo's test-bed image models as its priors;
* :class:`FolderAttackerData` -- a data-set folder (plain class folders, UCF-101, HMDB-51, Kinetics) and its
  split, labels in the attacked model's class order;
* :class:`TensorAttackerData` -- tensors, or an ``.npz`` with ``videos`` and ``labels``.

Clips are returned at the attacked videos' shape ``(T, C, H, W)``: frames are sampled uniformly and
resized when the source differs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from vidattack import io
from vidattack.data import folders
from vidattack.data.layouts import open_folder
from vidattack.data.synthetic import DATA_NAMES, MOTION_CLASSES, SPLITS, SynthConfig, data_name, generate
from vidattack.video import validate_video

__all__ = [
    "AttackerData",
    "AttackerDataRequired",
    "SyntheticAttackerData",
    "TensorAttackerData",
    "FolderAttackerData",
    "open_attacker_data",
    "FLAG",
]

#: How the user gives attacker data on the command line (named in every error that asks for it).
FLAG = "--attacker-data"

Shape = tuple[int, int, int, int]


class AttackerDataRequired(ValueError):
    """A method needs the attacker's own videos and none were given (raised before any query)."""

    def __init__(self, method: str, purpose: str) -> None:
        super().__init__(
            f"{method} needs the attacker's own videos ({purpose}) and none were given: pass {FLAG} "
            "(a data-set folder with a training split, an .npz with 'videos' and 'labels', or 'synth' for "
            "the synthetic test bed), the campaign key attacker_data, or attacker_data= from Python. "
            "vidattack never substitutes its test bed for a model that was not trained on it."
        )


class AttackerData(Protocol):
    """The attacker's own labelled videos (and, optionally, image models trained on the same data).

    Attributes:
        description: where the clips come from (recorded with every result).
        image_models: references of image models for priors (V-BAD's transferred tentative, SVA's
            features), or ``()`` when the attacker has none.
    """

    description: str
    image_models: tuple[str, ...]

    def pool(self, count: int, shape: Shape) -> tuple[Tensor, Tensor]:
        """The first ``count`` clips, classes interleaved: ``(videos [M,T,C,H,W], labels [M])``."""
        ...

    def clips_of_class(self, cls: int, count: int, shape: Shape, generator: torch.Generator) -> Tensor:
        """Up to ``count`` clips ``[M,T,C,H,W]`` of class ``cls``, drawn with ``generator``."""
        ...


def _fit(video: Tensor, shape: Shape) -> Tensor:
    """One clip ``[T',C,H',W']`` sampled and resized to ``shape``."""
    frames, channels, height, width = shape
    if video.shape[1] != channels:
        raise ValueError(
            f"attacker data clips have {video.shape[1]} channels, the attacked videos {channels}"
        )
    if tuple(video.shape) == tuple(shape):
        return video
    return io.sample_and_resize(video, frames, (height, width), "uniform", None)


class SyntheticAttackerData:
    """A synthetic test bed's ``split`` (default ``train``), rendered at the attacked videos' shape.

    Only meaningful against models trained on that test bed (the zoo's); its image models are the zoo's
    two image backbones of the same bed (``*-synth`` for the motion bed, ``*-scene`` for ``scene``).
    """

    image_models: tuple[str, ...] = ("image-small-synth", "image-small2-synth")

    def __init__(self, split: str = "train", config: SynthConfig | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"attacker data split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.split = split
        self.config = config or SynthConfig()
        if self.config.bed != "motion":
            self.image_models = (f"image-small-{self.config.bed}", f"image-small2-{self.config.bed}")
        self.description = f"{data_name(self.config)}:{split}"

    @classmethod
    def for_model(cls, model: str, split: str = "train") -> SyntheticAttackerData:
        """The attacker data of a zoo model: the test bed it was trained on (``*-scene``: scene)."""
        return cls(split, SynthConfig(bed="scene") if model.endswith("-scene") else SynthConfig())

    def _config(self, shape: Shape) -> SynthConfig:
        frames, channels, height, width = shape
        if channels != 3 or height != width:
            raise ValueError(
                f"the synthetic test bed renders square RGB frames; it cannot serve as attacker data for "
                f"videos of shape {tuple(shape)} (pass {FLAG} with your own videos)"
            )
        return SynthConfig(frames=frames, size=height, seed=self.config.seed, bed=self.config.bed)

    def pool(self, count: int, shape: Shape) -> tuple[Tensor, Tensor]:
        return _render(self.split, self._config(shape), count)

    def clips_of_class(self, cls: int, count: int, shape: Shape, generator: torch.Generator) -> Tensor:
        config = self._config(shape)
        if not 0 <= cls < len(MOTION_CLASSES):
            raise ValueError(f"the test bed has no class {cls} (it has {len(MOTION_CLASSES)} classes)")
        # Labels are a permutation of the ten classes within each aligned block of ten clips, so `count`
        # random blocks hold `count` clips of every class.
        blocks = torch.randperm(config.n_for(self.split) // 10, generator=generator)[:count].tolist()
        indices = [i for block in blocks for i in range(block * 10, block * 10 + 10)]
        clips = generate(self.split, config, indices=indices)
        return clips.videos[clips.labels == int(cls)][:count]


@functools.lru_cache(maxsize=16)
def _render(split: str, config: SynthConfig, count: int) -> tuple[Tensor, Tensor]:
    # Cached: the same pool serves every attacked video of a run (callers never modify it in place).
    clips = generate(split, config, indices=range(count))
    return clips.videos, clips.labels


class TensorAttackerData:
    """Labelled clips given as tensors: ``videos [M,T,C,H,W]`` float in [0, 1] and ``labels [M]``."""

    image_models: tuple[str, ...] = ()

    def __init__(
        self, videos: Tensor, labels: Tensor | Sequence[int], *, description: str = "tensors",
        image_models: Sequence[str] = (),
    ) -> None:  # fmt: skip
        validate_video(videos, "attacker data videos")
        labels = torch.as_tensor(labels).reshape(-1)
        if labels.numel() != videos.shape[0] or labels.is_floating_point() or bool((labels < 0).any()):
            raise ValueError(
                f"attacker data labels must be {videos.shape[0]} non-negative integers, got {labels.tolist()}"
            )
        self.videos, self.labels = videos, labels.long()
        self.description = description
        self.image_models = tuple(image_models)

    def pool(self, count: int, shape: Shape) -> tuple[Tensor, Tensor]:
        order = _interleaved(self.labels.tolist())[:count]
        return torch.stack([_fit(self.videos[i], shape) for i in order]), self.labels[order]

    def clips_of_class(self, cls: int, count: int, shape: Shape, generator: torch.Generator) -> Tensor:
        members = (self.labels == int(cls)).nonzero().flatten()
        members = members[torch.randperm(members.numel(), generator=generator)][:count]
        if members.numel() == 0:
            return self.videos.new_zeros((0, *shape))
        return torch.stack([_fit(self.videos[int(i)], shape) for i in members])


class FolderAttackerData:
    """A data-set folder's ``split``: plain class folders (``ROOT/SPLIT/CLASS/*.mp4``, or
    ``ROOT/CLASS/*.mp4`` without a split), UCF-101, HMDB-51 or Kinetics (recognised by their split
    files; :mod:`vidattack.data.layouts`).

    Labels are the attacked model's class indices when ``model_classes`` (its class names) match the
    folder's classes; a targeted attack's start clip is then of the target class the model means.
    Clips are decoded on demand at the attacked videos' shape and kept for the rest of the run.
    """

    image_models: tuple[str, ...] = ()

    def __init__(
        self, root: str | os.PathLike, *, split: str = "train", image_models: Sequence[str] = (),
        model_classes: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"{FLAG}: folder not found: '{self.root}'")
        self.split = split
        self.description = f"{self.root} ({split})"
        self.image_models = tuple(image_models)
        self.model_classes = None if model_classes is None else tuple(model_classes)
        self._datasets: dict[Shape, folders.VideoFolderDataset] = {}
        self._cache: dict[tuple[Shape, int], Tensor] = {}

    def _dataset(self, shape: Shape) -> folders.VideoFolderDataset:
        if shape not in self._datasets:
            frames, _, height, width = shape
            try:
                self._datasets[shape] = open_folder(
                    self.root, self.split, frames=frames, size=(height, width), model_classes=self.model_classes
                )
            except (ValueError, FileNotFoundError) as error:
                raise ValueError(f"{FLAG}: {error}") from None
        return self._datasets[shape]

    def _clip(self, shape: Shape, index: int) -> Tensor:
        key = (shape, index)
        if key not in self._cache:
            video, _ = self._dataset(shape).load(index)
            self._cache[key] = _fit(video, shape)
        return self._cache[key]

    def pool(self, count: int, shape: Shape) -> tuple[Tensor, Tensor]:
        labels = self._dataset(shape).labels
        order = _interleaved(labels)[:count]
        return torch.stack([self._clip(shape, i) for i in order]), torch.tensor([labels[i] for i in order])

    def clips_of_class(self, cls: int, count: int, shape: Shape, generator: torch.Generator) -> Tensor:
        labels = torch.tensor(self._dataset(shape).labels)
        members = (labels == int(cls)).nonzero().flatten()
        members = members[torch.randperm(members.numel(), generator=generator)][:count]
        if members.numel() == 0:
            return torch.zeros((0, *shape))
        return torch.stack([self._clip(shape, int(i)) for i in members])


def _interleaved(labels: Sequence[int]) -> list[int]:
    """Indices ordered round-robin over the classes (first of each class, then second, ...)."""
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(index)
    order: list[int] = []
    depth = 0
    while len(order) < len(labels):
        for cls in sorted(by_class):
            if depth < len(by_class[cls]):
                order.append(by_class[cls][depth])
        depth += 1
    return order


def open_attacker_data(
    reference: str | os.PathLike, *, split: str = "train", model_classes: Sequence[str] | None = None
) -> AttackerData:
    """Attacker data from the command line's form: ``synth`` (or ``synth:SPLIT``; ``scene`` likewise), an ``.npz`` with
    ``videos`` ``[M,T,C,H,W]`` and ``labels`` ``[M]``, or a data-set folder (``split`` of it; labels in the order
    of ``model_classes``, the attacked model's class names, where they match the folder's).

    Raises:
        ValueError: naming ``--attacker-data``, for a missing path or an unreadable file.
    """
    text = os.fspath(reference)
    name = text.split(":", 1)[0]
    if name in DATA_NAMES and (text == name or text.startswith(name + ":")):
        return SyntheticAttackerData(
            text.split(":", 1)[1] if ":" in text else split, SynthConfig(bed=DATA_NAMES[name])
        )
    path = Path(text)
    if not path.exists():
        raise ValueError(f"{FLAG}: no such file or folder: '{path}' (expected a folder, an .npz or 'synth')")
    if path.is_dir():
        return FolderAttackerData(path, split=split, model_classes=model_classes)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"{FLAG}: '{path}' is neither a folder nor an .npz file")
    arrays = io.load_npz(path)
    if "videos" not in arrays or "labels" not in arrays:
        raise ValueError(f"{FLAG}: '{path}' must hold arrays 'videos' [M,T,C,H,W] and 'labels' [M]")
    videos = arrays["videos"]
    if videos.dtype == torch.uint8:
        videos = videos.float() / 255.0
    return TensorAttackerData(videos.float(), arrays["labels"], description=str(path))
