"""Building blocks every attack shares: where a perturbation may live (masks) and how it is bounded.

Masks are float tensors of 0/1 broadcastable to ``[N,T,C,H,W]``; a perturbation is multiplied by its
mask after every update, so masked-out values stay *exactly* zero. Projections keep the perturbation in
its eps-ball and the adversarial video in [0, 1].
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["build_mask", "frame_mask_from_indices", "project", "clip_to_valid", "Norm"]

Norm = Literal["linf", "l2"]


def frame_mask_from_indices(frames: list[int] | range, num_frames: int) -> Tensor:
    """``bool[T]`` frame mask that is True at ``frames``; out-of-range indices raise ``ValueError``."""
    mask = torch.zeros(num_frames, dtype=torch.bool)
    for index in frames:
        if not 0 <= int(index) < num_frames:
            raise ValueError(f"frame index {index} is outside [0, {num_frames - 1}]")
        mask[int(index)] = True
    return mask


def build_mask(
    shape: torch.Size | tuple[int, ...],
    *,
    frame_mask: Tensor | None = None,
    pixel_mask: Tensor | None = None,
    device: torch.device | str | None = None,
) -> Tensor | None:
    """Combine a frame mask and a pixel mask into one float 0/1 mask ``[N,T,C|1,H|1,W|1]``.

    Args:
        shape: the video batch shape ``(N, T, C, H, W)``.
        frame_mask: ``[T]`` or ``[N, T]``; nonzero = the frame may be perturbed.
        pixel_mask: ``[H, W]``, ``[T, H, W]``, ``[N, T, H, W]``, ``[N, T, 1, H, W]`` or
            ``[N, T, C, H, W]``; nonzero = the pixel may be perturbed.

    Returns:
        ``None`` when both masks are ``None`` (no restriction), else the combined mask.

    Raises:
        ValueError: a mask whose shape does not fit ``shape``.
    """
    n, t, c, h, w = shape
    mask: Tensor | None = None
    if frame_mask is not None:
        frames = torch.as_tensor(frame_mask, device=device)
        if frames.dim() == 1:
            frames = frames.unsqueeze(0)
        if frames.dim() != 2 or frames.shape[1] != t or frames.shape[0] not in (1, n):
            raise ValueError(f"frame_mask must have shape [T={t}] or [N={n}, T={t}], got {tuple(frame_mask.shape)}")
        mask = (frames != 0).float().reshape(frames.shape[0], t, 1, 1, 1)
    if pixel_mask is not None:
        pixels = torch.as_tensor(pixel_mask, device=device)
        if pixels.dim() == 2:
            pixels = pixels.reshape(1, 1, 1, *pixels.shape)
        elif pixels.dim() == 3:
            pixels = pixels.reshape(1, pixels.shape[0], 1, *pixels.shape[1:])
        elif pixels.dim() == 4:
            pixels = pixels.unsqueeze(2)
        expected = (n, t, c, h, w)
        if pixels.dim() != 5 or any(p not in (1, e) for p, e in zip(pixels.shape, expected, strict=True)):
            raise ValueError(
                f"pixel_mask must broadcast to [N,T,C,H,W]={list(expected)} (e.g. [H,W], [T,H,W], [N,T,H,W]), "
                f"got {tuple(pixel_mask.shape)}"
            )
        if pixels.shape[-2:] != (h, w):
            raise ValueError(f"pixel_mask must cover the frame size {h}x{w}, got {tuple(pixel_mask.shape)}")
        pixels = (pixels != 0).float()
        mask = pixels if mask is None else mask * pixels
    return mask


def project(delta: Tensor, eps: float, norm: Norm) -> Tensor:
    """Project each video's perturbation ``[N, ...]`` onto the ``norm`` ball of radius ``eps``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    if norm == "l2":
        norms = delta.flatten(1).norm(p=2, dim=1).clamp(min=1e-12)
        factor = (eps / norms).clamp(max=1.0)
        return delta * factor.reshape(-1, *([1] * (delta.dim() - 1)))
    raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")


def clip_to_valid(clean: Tensor, delta: Tensor) -> Tensor:
    """The perturbation that keeps ``clean + delta`` in [0, 1] (zeros stay zero)."""
    return (clean + delta).clamp(0.0, 1.0) - clean
