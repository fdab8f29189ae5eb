"""The one video layout of vidattack and its validation.

Every attack, metric and oracle sees videos as ``Tensor[N, T, C, H, W]``, float, values in [0, 1]
(frame-major, so frame masks and per-frame offsets are plain indexing). Models that want
``[N, C, T, H, W]`` or mean/std normalisation are wrapped once in :mod:`vidattack.models`.

:func:`validate_video` is the single check used at every public boundary; it raises ``ValueError``
naming the argument, what was expected and what was given.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "validate_video",
    "validate_label",
    "as_batch",
    "to_float",
    "to_uint8",
    "cthw_to_tchw",
    "tchw_to_cthw",
    "ncthw_to_ntchw",
    "ntchw_to_ncthw",
    "numpy_views",
]


def validate_video(
    video: object,
    name: str = "video",
    *,
    batched: bool = True,
    channels: int | tuple[int, ...] = (1, 3),
    check_range: bool = True,
) -> Tensor:
    """Check that ``video`` follows the vidattack layout and return it unchanged.

    Args:
        video: the tensor to check.
        name: the argument's name, used in error messages.
        batched: expect ``[N, T, C, H, W]`` (True) or ``[T, C, H, W]`` (False).
        channels: allowed channel counts (3 for RGB; 1 is accepted for grey-scale).
        check_range: also require every value to lie in [0, 1] and be finite.

    Returns:
        The same tensor (no copy).

    Raises:
        ValueError: wrong type, rank, channel count, dtype, empty T/H/W (or N), NaN/inf, or values
            outside [0, 1]. The message names ``name``, the expectation and what was given.
    """
    layout = "[N, T, C, H, W]" if batched else "[T, C, H, W]"
    if not isinstance(video, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {layout}, got {type(video).__name__}")
    rank = 5 if batched else 4
    if video.dim() != rank:
        raise ValueError(
            f"{name} must have rank {rank} with layout {layout}, got rank {video.dim()} "
            f"(shape {tuple(video.shape)})"
        )
    if not video.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {video.dtype} "
            "(convert uint8 frames with vidattack.video.to_float)"
        )
    allowed = (channels,) if isinstance(channels, int) else tuple(channels)
    c_axis = 2 if batched else 1
    if video.shape[c_axis] not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} channels at axis {c_axis} of {layout}, "
            f"got {video.shape[c_axis]} (shape {tuple(video.shape)}; a [N, C, T, H, W] tensor needs "
            "vidattack.video.ncthw_to_ntchw)"
        )
    axes = ("N", "T", "C", "H", "W") if batched else ("T", "C", "H", "W")
    for axis_name, size in zip(axes, video.shape, strict=True):
        if size == 0:
            raise ValueError(f"{name} must have a non-empty {axis_name} axis, got shape {tuple(video.shape)}")
    if check_range:
        # min/max propagate NaN, so one pass over the data checks range and finiteness together.
        low, high = (float(v) for v in torch.aminmax(video.detach()))
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{name} must be finite, got NaN or inf values")
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{name} values must lie in [0, 1], got range [{low:.4g}, {high:.4g}]")
    return video


def validate_label(label: object, n: int, num_classes: int | None = None, name: str = "label") -> Tensor:
    """Turn ``label`` (int, sequence or tensor) into a ``long`` tensor of shape ``[n]`` and check it.

    Raises:
        ValueError: wrong length, non-integer values, negative values, or values >= ``num_classes``.
    """
    if isinstance(label, Tensor):
        tensor = label.detach().reshape(-1)
        if tensor.is_floating_point() or tensor.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer class indices, got dtype {tensor.dtype}")
        tensor = tensor.long()
    else:
        values = [label] if isinstance(label, int) else list(label)  # type: ignore[arg-type]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{name} must hold integer class indices, got {label!r}")
        tensor = torch.tensor(values, dtype=torch.long)
    if tensor.numel() == 1 and n > 1:
        tensor = tensor.expand(n).clone()
    if tensor.numel() != n:
        raise ValueError(f"{name} must have one entry per video ({n}), got {tensor.numel()}")
    if n and int(tensor.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got {tensor.tolist()}")
    if num_classes is not None and n and int(tensor.max()) >= num_classes:
        raise ValueError(f"{name} must be < {num_classes} (the model's class count), got {tensor.tolist()}")
    return tensor


def validate_label_and_target(
    label: object, target: object | None, n: int, num_classes: int | None = None
) -> tuple[Tensor, Tensor | None]:
    """``(labels long[n], targets long[n] or None)`` checked against the model's ``num_classes``.

    A targeted attack whose target is the true label is refused: it would be "successful" without
    changing anything.

    Raises:
        ValueError: naming ``label`` or ``target``.
    """
    labels = validate_label(label, n, num_classes, "label")
    if target is None:
        return labels, None
    targets = validate_label(target, n, num_classes, "target")
    same = (targets == labels).nonzero().flatten().tolist()
    if same:
        raise ValueError(
            f"target must differ from the true label (video(s) {same}: target {targets[same].tolist()} "
            f"= label {labels[same].tolist()})"
        )
    return labels, targets


def as_batch(video: Tensor, name: str = "video") -> Tensor:
    """Accept ``[T, C, H, W]`` or ``[N, T, C, H, W]`` and return a validated ``[N, T, C, H, W]`` view."""
    if isinstance(video, Tensor) and video.dim() == 4:
        video = video.unsqueeze(0)
    return validate_video(video, name)


def to_float(frames: Tensor) -> Tensor:
    """uint8 frames (any layout) in [0, 255] -> float32 in [0, 1]."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8, got dtype {frames.dtype}")
    return frames.to(torch.float32).div_(255.0)


def to_uint8(video: Tensor) -> Tensor:
    """Float video in [0, 1] (any layout) -> uint8 in [0, 255], rounding to the nearest level.

    Rounding (not truncation) makes ``to_uint8(to_float(x)) == x`` exact for every uint8 ``x``.
    """
    if not video.is_floating_point():
        raise ValueError(f"video must be floating point, got dtype {video.dtype}")
    return video.detach().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def cthw_to_tchw(video: Tensor) -> Tensor:
    """``[C, T, H, W]`` -> ``[T, C, H, W]`` (a view)."""
    return video.permute(1, 0, 2, 3)


def tchw_to_cthw(video: Tensor) -> Tensor:
    """``[T, C, H, W]`` -> ``[C, T, H, W]`` (a view)."""
    return video.permute(1, 0, 2, 3)


def ncthw_to_ntchw(video: Tensor) -> Tensor:
    """``[N, C, T, H, W]`` -> ``[N, T, C, H, W]`` (a view)."""
    return video.permute(0, 2, 1, 3, 4)


def ntchw_to_ncthw(video: Tensor) -> Tensor:
    """``[N, T, C, H, W]`` -> ``[N, C, T, H, W]`` (a view)."""
    return video.permute(0, 2, 1, 3, 4)


def numpy_views(*tensors: Tensor) -> list[np.ndarray] | None:
    """NumPy views (shared memory, no copy) of ``tensors`` when all are on the CPU in a dtype NumPy has
    (float16/32/64; bfloat16 has no NumPy type), else ``None``. The video Square Attack writes its
    squares (a few thousand pixels per oracle call) through them: NumPy indexes them for a fraction of
    what a PyTorch call costs, with the same IEEE arithmetic in the same dtype."""
    if all(t.device.type == "cpu" and t.dtype in (torch.float16, torch.float32, torch.float64) for t in tensors):
        return [t.detach().numpy() for t in tensors]
    return None
