"""Spectral-residual saliency (Hou & Zhang, CVPR 2007) and the Heuristic attack's spatial mask.

The Heuristic attack (Wei et al., AAAI 2020, Sec. "Heuristic Spatial Sparsity") perturbs only the
salient regions of each frame: the saliency map of every frame is computed with OpenCV's
spectral-residual detector (``cv2.saliency.StaticSaliencySpectralResidual``, from opencv-contrib) and
the most salient share ``phi`` of the frame's area is kept (``phi`` in (0, 1]; the paper uses 0.6
untargeted and 0.8 targeted, Tables 3 and 5).

Small frames. OpenCV's detector works on a fixed 64x64 grey-scale working image (its default
``ImageWidth``/``ImageHeight``) and resizes the map back to the frame size, so 32x32 test-bed frames are
*upsampled* before the spectral residual is taken. On the test bed this still finds the moving object
(checked on synthetic clips: the object's pixels get the largest values), but the map also has bright
artefacts in the corners (the FFT treats the frame as periodic). We keep OpenCV's behaviour unchanged
and make the mask's size exact instead: per frame, exactly ``round(phi * H * W)`` pixels are kept, the
most salient ones, ties broken by pixel order (a ranking, not a threshold, so flat maps still give the
requested share).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["spectral_residual_saliency", "saliency_mask"]


def _detector():  # noqa: ANN202 - OpenCV object
    try:
        import cv2
    except ImportError as error:  # pragma: no cover - opencv-contrib is a dependency
        raise ImportError("spectral-residual saliency needs opencv-contrib-python(-headless)") from error
    if not hasattr(cv2, "saliency"):  # pragma: no cover
        raise ImportError(
            "cv2.saliency is missing: install opencv-contrib-python-headless, not opencv-python"
        )
    return cv2, cv2.saliency.StaticSaliencySpectralResidual_create()


def spectral_residual_saliency(frames: Tensor) -> Tensor:
    """Saliency maps of ``frames [..., C, H, W]`` (C = 1 or 3, values in [0, 1]) -> ``float32 [..., H, W]``.

    Each frame is turned into an 8-bit image (RGB given to OpenCV as BGR) and passed to the
    spectral-residual detector; its map (values in [0, 1]) is returned. Runs on CPU.
    """
    if not isinstance(frames, Tensor) or frames.dim() < 3 or frames.shape[-3] not in (1, 3):
        shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"frames must be a tensor [..., C, H, W] with C = 1 or 3, got {shape}")
    cv2, detector = _detector()
    lead = frames.shape[:-3]
    height, width = frames.shape[-2:]
    images = (
        (frames.detach().float().cpu().clamp(0, 1).reshape(-1, *frames.shape[-3:]) * 255)
        .round()
        .to(torch.uint8)
    )
    maps = np.empty((images.shape[0], height, width), dtype=np.float32)
    for k, image in enumerate(images):
        array = image.permute(1, 2, 0).numpy()
        array = np.ascontiguousarray(array[..., ::-1] if array.shape[2] == 3 else array[..., 0])
        ok, saliency = detector.computeSaliency(array)
        if not ok:  # pragma: no cover - OpenCV reports failure only for empty images
            raise RuntimeError("OpenCV spectral-residual saliency failed")
        saliency = np.asarray(saliency, dtype=np.float32)
        if saliency.shape != (height, width):  # pragma: no cover - OpenCV resizes back already
            saliency = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)
        maps[k] = saliency
    return torch.from_numpy(maps).reshape(*lead, height, width)


def saliency_mask(video: Tensor, phi: float) -> Tensor:
    """Keep the most salient share ``phi`` of every frame (Heuristic attack's SPATIAL, Alg. 2 line 1).

    Args:
        video: ``[T,C,H,W]`` or ``[N,T,C,H,W]`` in [0, 1].
        phi: share of each frame's area to keep, in (0, 1] (``phi = 1``: every pixel).

    Returns:
        ``bool [T,H,W]`` (or ``[N,T,H,W]``), exactly ``round(phi * H * W)`` (at least 1) True pixels per
        frame, on the video's device.
    """
    if not isinstance(phi, (int, float)) or isinstance(phi, bool) or not 0 < phi <= 1:
        raise ValueError(f"phi must be a number in (0, 1], got {phi!r}")
    if not isinstance(video, Tensor) or video.dim() not in (4, 5):
        shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
        raise ValueError(f"video must be [T,C,H,W] or [N,T,C,H,W], got {shape}")
    height, width = video.shape[-2:]
    keep = max(1, int(round(phi * height * width)))
    if keep >= height * width:
        return torch.ones((*video.shape[:-3], height, width), dtype=torch.bool, device=video.device)
    saliency = spectral_residual_saliency(video).reshape(-1, height * width)
    order = torch.argsort(-saliency, dim=1, stable=True)[:, :keep]
    mask = torch.zeros_like(saliency, dtype=torch.bool)
    mask.scatter_(1, order, True)
    return mask.reshape(*video.shape[:-3], height, width).to(video.device)
