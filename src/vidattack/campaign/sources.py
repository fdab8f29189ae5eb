"""Video sources of a campaign: the synthetic test bed or a dataset folder, addressed by index.

A source hands out videos by their index in the split, in vidattack's layout (``[N,T,C,H,W]`` float in
[0, 1]) with their labels. Workers open their own source from the (picklable) :class:`DataConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from vidattack.campaign.config import DataConfig

__all__ = ["VideoSource", "SyntheticSource", "FolderSource", "open_source"]


class VideoSource(Protocol):
    """What the campaign needs from a data set."""

    name: str
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        """Number of videos in the split."""
        ...

    def load(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Videos ``[n,T,C,H,W]`` float in [0, 1] and labels ``long[n]`` of ``indices``."""
        ...

    def video_id(self, index: int) -> str:
        """A human-readable identifier of video ``index`` (file name or ``synth:SPLIT:INDEX``)."""
        ...


class SyntheticSource:
    """The synthetic test bed (:mod:`vidattack.data.synthetic`): clip ``i`` is rendered on demand."""

    def __init__(self, data: DataConfig) -> None:
        from vidattack.data import synthetic

        self._synthetic = synthetic
        self.config = synthetic.SynthConfig(**data.synth)
        self.split = data.split
        self.name = data.name
        self.class_names = tuple(synthetic.MOTION_CLASSES)

    def __len__(self) -> int:
        return self.config.n_for(self.split)

    def load(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        clips = self._synthetic.generate(self.split, self.config, indices=list(indices))
        return clips.videos, clips.labels

    def video_id(self, index: int) -> str:
        return f"{self._synthetic.data_name(self.config)}:{self.split}:{index}"


class FolderSource:
    """A UCF-101 / HMDB-51 / Kinetics folder through :func:`vidattack.data.layouts.open_folder`.

    Clips are sampled to ``frames`` frames of ``size`` (the model's own clip shape unless the config
    sets them); labels follow ``model_classes`` (the model's class names) where they match the data
    set's. A video that cannot be decoded raises (``on_error="raise"``): the campaign records that
    item as an error instead of silently attacking a neighbouring video.
    """

    def __init__(
        self, data: DataConfig, *, frames: int | None = None, size: int | tuple[int, int] | None = None,
        model_classes: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        from vidattack.data.layouts import open_folder

        options = dict(data.folder)
        frames = options.pop("frames", None) or frames or 16
        size = options.pop("size", None) or size or (112, 112)
        if isinstance(size, int):
            size = (size, size)
        self._dataset = open_folder(
            str(data.root), data.split, frames=int(frames), size=tuple(size), layout=data.layout,
            model_classes=model_classes, **options,
        )  # fmt: skip
        self.name = data.name
        self.class_names = tuple(self._dataset.class_names)

    def __len__(self) -> int:
        return len(self._dataset)

    def load(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        videos, labels = [], []
        for index in indices:
            video, label = self._dataset.load(int(index))
            videos.append(video)
            labels.append(int(label))
        return torch.stack(videos), torch.tensor(labels, dtype=torch.long)

    def video_id(self, index: int) -> str:
        return str(self._dataset.samples[index][0])


def open_source(
    data: DataConfig, *, frames: int | None = None, size: Any = None, model_classes: Sequence[str] | None = None
) -> VideoSource:
    """Open the campaign's video source (``frames``/``size``: the model's clip shape, and ``model_classes``
    its class names, for folders)."""
    if data.source == "synthetic":
        return SyntheticSource(data)
    return FolderSource(data, frames=frames, size=size, model_classes=model_classes)
