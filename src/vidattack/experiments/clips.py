"""The clips a universal perturbation is learnt and measured on: those the model classifies correctly.

Both universal experiments (flickering, Pony et al. 2021 Sec. 4.2; sparse, Wei et al. 2019 Sec. 4.4)
train on correctly classified training videos and report fooling on correctly classified test videos.
Those come from the data the user names (``--data``): a test bed, an ``.npz`` with
``{split}_videos`` / ``{split}_labels``, or a data-set folder (any layout of
:mod:`vidattack.data.layouts`, labels in the model's class order). The test bed is the default only for
the zoo's models, which were trained on it; any other model must be given its data.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidattack.data.synthetic import DATA_NAMES, SynthConfig, data_name, generate
from vidattack.selection import correctly_classified
from vidattack.video import to_float

__all__ = ["data_for", "correct_clips"]

_CHUNK = 64  # clips classified at once while scanning a split


def data_for(model: str, data: str | None) -> str:
    """``data`` if given; for a zoo model the test bed it was trained on (``*-scene``: ``scene``).

    Raises:
        ValueError: naming ``--data``, for any other model without data.
    """
    if data is not None:
        return data
    from vidattack.methods.attacker_data import SyntheticAttackerData
    from vidattack.methods.model_refs import is_zoo_model

    if is_zoo_model(model):  # the same rule that picks a zoo model's attacker data
        return data_name(SyntheticAttackerData.for_model(model).config)
    raise ValueError(
        f"--data is required for {model!r}, a model outside the zoo: a data-set folder (train and test "
        "splits), or an .npz with train_/test_ videos and labels; vidattack does not substitute its test bed"
    )


def correct_clips(
    data: str, split: str, count: int, net: Any, device: str = "cpu", *, frames: int | None = None, offset: int = 0
) -> tuple[Tensor, Tensor, list[int]]:
    """The first ``count`` clips of ``split`` (in index order from ``offset``) that ``net`` classifies correctly.

    Args:
        data: ``synth`` / ``scene``, an ``.npz`` path or a data-set folder (see the module docs).
        split: ``train``, ``val`` or ``test``.
        net: the model; its ``num_frames`` / ``input_size`` fix the clip shape of test beds and folders.
        frames: clip length instead of the model's (test beds and folders).

    Returns:
        ``(videos [n,T,C,H,W] in [0, 1], labels [n], indices in the split)`` on ``device``, ``n <= count``.

    Raises:
        ValueError: naming ``--data``, for a missing file or folder or an ``.npz`` without the split.
    """
    length = int(frames or getattr(net, "num_frames", None) or 16)
    size = getattr(net, "input_size", None) or 32
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))
    if data in DATA_NAMES:
        config = SynthConfig(frames=length, size=height, bed=DATA_NAMES[data])
        total = config.n_for(split)

        def load(indices: range) -> tuple[Tensor, Tensor, list[int]]:
            clips = generate(split, config, indices=indices)
            return clips.videos, clips.labels, list(indices)

    elif Path(data).is_dir():
        from vidattack.data.folders import CorruptVideoWarning
        from vidattack.data.layouts import open_folder

        try:
            dataset = open_folder(data, split, frames=length, size=(height, width),
                                  model_classes=getattr(net, "class_names", None))  # fmt: skip
        except (ValueError, FileNotFoundError) as error:
            raise ValueError(f"--data: {error}") from None
        total = len(dataset)

        def load(indices: range) -> tuple[Tensor, Tensor, list[int]]:
            items = {}
            for index in indices:  # a real download has a few files FFmpeg cannot decode: they are skipped
                try:
                    items[index] = dataset.load(index)
                except ValueError as error:
                    warnings.warn(f"skipping unreadable video '{dataset.samples[index][0]}': {error}",
                                  CorruptVideoWarning, stacklevel=2)  # fmt: skip
            if not items:
                return torch.zeros(0, length, 3, height, width), torch.zeros(0, dtype=torch.long), []
            videos = torch.stack([video for video, _ in items.values()])
            return videos, torch.tensor([label for _, label in items.values()]), list(items)

    else:
        videos, labels = _npz_split(Path(data), split)
        total = len(labels)

        def load(indices: range) -> tuple[Tensor, Tensor, list[int]]:
            return videos[indices.start : indices.stop], labels[indices.start : indices.stop], list(indices)

    kept_videos, kept_labels, kept_indices = [], [], []
    start = offset
    while len(kept_indices) < count and start < total:
        indices = range(start, min(start + max(_CHUNK, count), total))
        start = indices.stop
        videos, labels, loaded = load(indices)
        if not loaded:
            continue
        keep = correctly_classified(net, videos.to(device), labels.to(device)).cpu()
        kept_videos.append(videos[keep].to(device))
        kept_labels.append(labels[keep].to(device))
        kept_indices.extend(i for i, ok in zip(loaded, keep.tolist(), strict=True) if ok)
    if not kept_videos:  # nothing (decodable) left to scan from offset
        return torch.zeros(0, length, 3, height, width, device=device), torch.zeros(0, dtype=torch.long), []
    return torch.cat(kept_videos)[:count], torch.cat(kept_labels)[:count], kept_indices[:count]


def _npz_split(path: Path, split: str) -> tuple[Tensor, Tensor]:
    import numpy as np

    if not path.is_file():
        raise ValueError(
            f"--data must be 'synth', 'scene', a data-set folder or an .npz file with {split}_videos/"
            f"{split}_labels, got '{path}'"
        )
    with np.load(path, allow_pickle=False) as archive:
        for key in (f"{split}_videos", f"{split}_labels"):
            if key not in archive:
                raise ValueError(f"{path} has no array {key!r} (needs train_/test_ videos and labels)")
        videos = torch.from_numpy(archive[f"{split}_videos"])
        labels = torch.from_numpy(archive[f"{split}_labels"]).long()
    # 8-bit frames become [0, 1] floats; checking the dtype after a float() would let 0-255 through.
    return (to_float(videos) if videos.dtype == torch.uint8 else videos.float()), labels
