"""Which frames of a video make up a clip.

Video models take a fixed number T of frames (16 for C3D, 32 or 64 for I3D). The papers evaluate
either T frames spread over the whole video or a contiguous T-frame snippet (the centre one at test
time, a random one for training). All functions return a ``long`` tensor of T frame indices in
``[0, num_frames)``, in temporal order.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "SAMPLING_MODES",
    "uniform_indices",
    "centre_snippet_indices",
    "random_snippet_indices",
    "sample_indices",
]

SAMPLING_MODES: tuple[str, ...] = ("uniform", "centre", "random")


def _check(num_frames: int, frames: int, stride: int = 1) -> None:
    for name, value in (("num_frames", num_frames), ("frames", frames), ("stride", stride)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def uniform_indices(num_frames: int, frames: int) -> Tensor:
    """``frames`` indices spread evenly over the whole video, first and last frame included.

    ``linspace(0, num_frames - 1, frames)`` rounded to the nearest frame; with ``frames == 1`` the
    middle frame. A video shorter than ``frames`` repeats frames (each at most once more than the others).
    """
    _check(num_frames, frames)
    if frames == 1:
        return torch.tensor([(num_frames - 1) // 2], dtype=torch.long)
    return torch.linspace(0, num_frames - 1, frames, dtype=torch.float64).round().long()


def centre_snippet_indices(num_frames: int, frames: int, stride: int = 1) -> Tensor:
    """The contiguous snippet of ``frames`` frames (every ``stride``-th frame) centred in the video.

    A video too short for the snippet falls back to :func:`uniform_indices` (the whole video, frames
    repeated), so the clip still spans the whole action in order.
    """
    _check(num_frames, frames, stride)
    span = (frames - 1) * stride + 1
    if span > num_frames:
        return uniform_indices(num_frames, frames)
    start = (num_frames - span) // 2
    return torch.arange(start, start + span, stride, dtype=torch.long)


def random_snippet_indices(
    num_frames: int, frames: int, stride: int = 1, generator: torch.Generator | None = None
) -> Tensor:
    """A contiguous snippet of ``frames`` frames starting at a random frame (training-time jitter).

    A video too short for the snippet falls back to :func:`uniform_indices`.
    """
    _check(num_frames, frames, stride)
    span = (frames - 1) * stride + 1
    if span > num_frames:
        return uniform_indices(num_frames, frames)
    start = int(torch.randint(0, num_frames - span + 1, (1,), generator=generator))
    return torch.arange(start, start + span, stride, dtype=torch.long)


def sample_indices(
    num_frames: int,
    frames: int,
    mode: str = "uniform",
    *,
    stride: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Dispatch on ``mode``: ``"uniform"`` (whole video), ``"centre"`` or ``"random"`` (snippet)."""
    if mode == "uniform":
        return uniform_indices(num_frames, frames)
    if mode == "centre":
        return centre_snippet_indices(num_frames, frames, stride)
    if mode == "random":
        return random_snippet_indices(num_frames, frames, stride, generator)
    raise ValueError(f"sampling mode must be one of {', '.join(SAMPLING_MODES)}, got {mode!r}")
