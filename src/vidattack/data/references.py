"""Video references as the CLI's ``--video`` option understands them: a file, an ``.npz`` tensor, or
``synth:SPLIT:INDEX`` / ``scene:SPLIT:INDEX`` (a clip of a synthetic test bed with its true label)."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from torch import Tensor

from vidattack import io
from vidattack.data.synthetic import DATA_NAMES, SPLITS, SynthConfig, generate

__all__ = ["load_video_any"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


def _load_synth(
    ref: str,
    frames: int | None,
    size: tuple[int, int] | None,
    config: SynthConfig | None,
    max_frames: int,
    max_pixels: int,
) -> tuple[Tensor, int]:
    parts = ref.split(":")
    if len(parts) != 3:
        raise ValueError(f"synthetic video reference must be 'synth:SPLIT:INDEX', got {ref!r}")
    _, split, index_text = parts
    if split not in SPLITS:
        raise ValueError(f"synthetic split must be one of {', '.join(SPLITS)}, got {split!r} in {ref!r}")
    if not (index_text.isascii() and index_text.isdigit()):
        raise ValueError(
            f"synthetic clip index must be a non-negative integer, got {index_text!r} in {ref!r}"
        )
    config = config if config is not None else SynthConfig()
    # The prefix names the bed (synth: motion, scene: scene); the rest of the config is the caller's.
    config = replace(config, bed=DATA_NAMES[parts[0]])
    # The clip is rendered at the requested frames and size: the same limits as a file.
    rendered_frames = config.frames if frames is None else max(2, frames)
    rendered = config.size if size is None else max(size)
    if rendered_frames > max_frames:
        raise ValueError(f"{ref!r}: {rendered_frames} frames is more than max_frames={max_frames} (--max-frames) allows")
    if rendered * rendered > max_pixels or (size is not None and size[0] * size[1] > max_pixels):
        raise ValueError(f"{ref!r}: frames of {rendered}x{rendered} pixels are more than max_pixels={max_pixels} "
                         "(--max-pixels) allows")
    index = int(index_text)
    if index >= config.n_for(split):
        raise ValueError(
            f"synthetic clip index {index} is out of range: the {split} split has {config.n_for(split)} clips"
        )
    if frames is not None:
        config = replace(config, frames=max(2, io.check_frames(frames)))
    if size is not None:
        height, width = io.check_size(size)
        # Render at the target size when it is square (sharper than resizing); otherwise resize.
        config = replace(config, size=max(8, height if height == width else max(height, width)))
    clips = generate(split, config, indices=[index])
    video = clips.videos[0]
    if frames is not None and video.shape[0] != frames:
        video = io.sample_and_resize(video, frames, None, "uniform", None)
    if size is not None:
        video = io.resize_video(video, size)
    return video, int(clips.labels[0])


def load_video_any(
    path_or_ref: io.PathLike,
    *,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    synth_config: SynthConfig | None = None,
    max_frames: int = io.MAX_FRAMES,
    max_pixels: int = io.MAX_PIXELS,
) -> tuple[Tensor, int | None]:
    """Load "a video" the way the CLI's ``--video`` option understands it.

    Accepted references:

    * a video file (mp4, avi, mkv, webm, ...): decoded with :func:`read_video`; label ``None``;
    * an ``.npz`` file with key ``video`` (``[T, C, H, W]`` or ``[1, T, C, H, W]``, float in [0, 1] or
      uint8) and optionally ``label`` (one integer);
    * ``synth:SPLIT:INDEX``: clip INDEX of the synthetic test bed's SPLIT (train, val, test) from
      ``synth_config`` (default :class:`~vidattack.data.synthetic.SynthConfig`), label = its motion
      class; ``scene:SPLIT:INDEX`` the same clip of the scene test bed (:mod:`vidattack.data.scene`).

    Args:
        path_or_ref: the reference.
        frames: sample this many frames uniformly over the video (synthetic clips are rendered with
            this many frames).
        size: resize to ``(H, W)`` (synthetic clips are rendered at that size when it is square).
        synth_config: the test bed configuration for ``synth:`` references.
        max_frames: refuse a video (file, tensor or synthetic clip) with more frames. Frames are sampled
            while a file is read, so memory follows the returned clip, not the file.
        max_pixels: refuse frames with more pixels (height x width).

    Returns:
        ``(video [T, C, H, W] float32 in [0, 1], label or None)``.

    Raises:
        FileNotFoundError: a file reference that does not exist.
        ValueError: an unknown scheme (``foo:...``), a malformed ``synth:`` reference or an index out
            of range, an undecodable file, an ``.npz`` without a valid ``video``, or a video past
            ``max_frames`` / ``max_pixels``.
    """
    if frames is not None:
        io.check_frames(frames)
    if size is not None:
        size = io.check_size(size)
    for limit, limit_name in ((max_frames, "max_frames"), (max_pixels, "max_pixels")):
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"{limit_name} must be a positive integer, got {limit!r}")
    if not isinstance(path_or_ref, (str, os.PathLike)):
        raise ValueError(
            f"video reference must be a path or 'synth:SPLIT:INDEX', got {type(path_or_ref).__name__}"
        )
    text = os.fspath(path_or_ref)
    if not isinstance(text, str):
        text = text.decode()
    if isinstance(path_or_ref, str) and text.split(":", 1)[0] in DATA_NAMES and ":" in text:
        return _load_synth(text, frames, size, synth_config, max_frames, max_pixels)
    path = Path(text)
    if not path.exists():
        match = _SCHEME.match(text)
        if match and isinstance(path_or_ref, str):
            raise ValueError(
                f"unknown video reference scheme {match.group(1)!r} in {text!r}: expected a video file, "
                "an .npz file or 'synth:SPLIT:INDEX'"
            )
        raise FileNotFoundError(f"video file not found: '{path}'")
    if path.suffix.lower() == ".npz":
        return io.load_npz_video(path, frames=frames, size=size, max_frames=max_frames, max_pixels=max_pixels)
    return io.read_video(path, frames=frames, size=size, max_frames=max_frames, max_pixels=max_pixels), None
