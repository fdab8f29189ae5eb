"""Reading and writing videos (PyAV) and tensors (``.npz``).

Videos come back in the vidattack layout, ``Tensor[T, C, H, W]`` float32 in [0, 1] (C = 3, RGB).
Every decoding error is turned into an exception that names the file: a missing file raises
``FileNotFoundError``, anything FFmpeg cannot decode raises ``ValueError("cannot decode video
'PATH': ...")``.

Writers never touch anything but the path they are given (creating its missing parent folders).

* :func:`write_lossless` -- FFV1 (``.mkv`` or ``.avi``) in the ``bgr0`` pixel format: a bit-exact copy of
  the 8-bit frames, for saving adversarial videos whose perturbations are a few levels of 255.
* :func:`write_preview` -- H.264 ``.mp4`` (yuv420p) that any player opens; lossy.
* :func:`write_video` -- the general helper both use.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidattack.sampling import SAMPLING_MODES, sample_indices
from vidattack.video import to_float, to_uint8, validate_video

__all__ = [
    "VIDEO_EXTENSIONS",
    "read_video",
    "decode_video",
    "resize_video",
    "write_video",
    "h264_round_trip",
    "write_lossless",
    "write_preview",
    "save_npz",
    "load_npz",
    "load_npz_video",
    "parse_toml",
    "load_toml",
    "sample_and_resize",
    "check_frames",
    "check_size",
    "MAX_FRAMES",
    "MAX_PIXELS",
    "MAX_BYTES",
    "MAX_NPZ_BYTES",
    "json_safe",
    "json_text",
]

#: File extensions recognised as videos.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")

PathLike = str | os.PathLike


def _av():
    # PyAV is imported on first use so that importing vidattack stays cheap.
    import av
    import av.video.reformatter  # noqa: F401 - makes av.video.reformatter available

    return av


def _check_readable(path: PathLike, what: str = "video file") -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: '{path}'")
    if not path.is_file():
        raise ValueError(f"{what} '{path}' is not a regular file")
    return path


# --------------------------------------------------------------------------------------------------
# Limits: a small file must not make vidattack allocate gigabytes (a 439 KB .npz of zeros can hold
# 3000 frames; a 136 KB .mkv can hold 2000x2000 frames). Frames are sampled while they are read.

#: Default most frames a video (or an ``.npz`` video) may have.
MAX_FRAMES = 10_000
#: Default most pixels (height x width) of one frame.
MAX_PIXELS = 4096 * 4096
#: Default most bytes of frames kept in memory (the clip returned, as float32).
MAX_BYTES = 2**30
#: Default most bytes of all the arrays of an ``.npz`` read whole by :func:`load_npz` (as stored): larger
#: than :data:`MAX_BYTES` because attacker data sets (many clips) are read this way.
MAX_NPZ_BYTES = 4 * 2**30


class _Refused(ValueError):
    """A ValueError whose message already names the file (not wrapped again)."""


def _check_limit(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_frame_limits(name: str, frames: int | None, height: int, width: int, max_frames: int, max_pixels: int) -> None:
    """Refuse a video of ``frames`` (None: not known yet) frames of ``height x width`` past the limits."""
    if frames is not None and frames > max_frames:
        raise _Refused(
            f"{name} has {frames} frames, more than max_frames={max_frames} (--max-frames) allows"
        )
    if height * width > max_pixels:
        raise _Refused(
            f"{name} has {height}x{width} frames ({height * width} pixels), more than max_pixels={max_pixels} "
            "(--max-pixels) allows"
        )


def _check_output_bytes(name: str, frames: int, channels: int, height: int, width: int, max_bytes: int) -> None:
    needed = frames * channels * height * width * 4  # float32
    if needed > max_bytes:
        raise _Refused(
            f"{name}: {frames} frames of {channels}x{height}x{width} need {needed / 2**20:.0f} MiB as float32, "
            f"more than max_bytes={max_bytes} allows (sample fewer frames or a smaller size)"
        )


def _scan(
    source: str | io.BytesIO,
    name: str,
    visit: Callable[[int, Any], None] | None,
    *,
    max_frames: int,
    max_pixels: int,
) -> tuple[int, int, int]:
    """Decode the first video stream of ``source`` frame by frame, calling ``visit(index, frame)``.

    Nothing is converted here: ``visit`` converts the frames it keeps. Frames past ``max_frames`` or
    larger than ``max_pixels`` are refused before they are converted.

    Returns:
        ``(frames, height, width)``.
    """
    av = _av()
    count, shape = 0, None
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.video:
                raise _Refused(f"cannot decode video {name}: the file has no video stream")
            stream = container.streams.video[0]
            # The declared size refuses huge frames before the first one is decoded.
            _check_frame_limits(f"video {name}", None, stream.codec_context.height or 0,
                                stream.codec_context.width or 0, max_frames, max_pixels)  # fmt: skip
            for frame in container.decode(stream):
                _check_frame_limits(f"video {name}", count + 1, frame.height, frame.width, max_frames, max_pixels)
                if shape is None:
                    shape = (frame.height, frame.width)
                elif shape != (frame.height, frame.width):
                    raise _Refused(
                        f"cannot decode video {name}: frame size changes within the stream "
                        f"({shape[0]}x{shape[1]} then {frame.height}x{frame.width})"
                    )
                if visit is not None:
                    visit(count, frame)
                count += 1
    except _Refused:
        raise
    except (ValueError, av.FFmpegError, OSError, RuntimeError, EOFError) as error:
        raise ValueError(f"cannot decode video {name}: {error}") from error
    if count == 0 or shape is None:
        raise ValueError(f"cannot decode video {name}: no frames could be decoded")
    return count, shape[0], shape[1]


def _rgb_converter() -> Callable[[Any], Tensor]:
    """``frame -> [3, H, W]`` uint8 RGB, with one reformatter for the whole stream.

    (frame.to_ndarray(format=...) sets up a new conversion context per frame, which costs more than
    decoding a small frame.)
    """
    av = _av()
    reformatter = av.video.reformatter.VideoReformatter()
    return lambda frame: torch.from_numpy(reformatter.reformat(frame, format="rgb24").to_ndarray()).permute(2, 0, 1)


def decode_video(
    path: PathLike, *, max_frames: int = MAX_FRAMES, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES
) -> Tensor:
    """Decode every frame of the first video stream of ``path``.

    Args:
        path: the video file.
        max_frames: refuse a video with more frames.
        max_pixels: refuse frames with more pixels (height x width).
        max_bytes: refuse a video whose frames would need more bytes (counted as float32).

    Returns:
        ``[T, 3, H, W]`` uint8 RGB frames.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a decodable video, has no video stream or no frames, or is past a
            limit (the message names the file and the limit).
    """
    path = _check_readable(path)
    return _decode(str(path), f"'{path}'", max_frames=max_frames, max_pixels=max_pixels, max_bytes=max_bytes)


def _decode(
    source: str | io.BytesIO,
    name: str,
    *,
    max_frames: int = MAX_FRAMES,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
) -> Tensor:
    """``[T, 3, H, W]`` uint8 frames of the first video stream of ``source`` (a path or an open buffer)."""
    _check_limit(max_frames, "max_frames"), _check_limit(max_pixels, "max_pixels"), _check_limit(max_bytes, "max_bytes")
    convert = _rgb_converter()
    frames: list[Tensor] = []

    def keep(index: int, frame: Any) -> None:
        _check_output_bytes(f"video {name}", index + 1, 3, frame.height, frame.width, max_bytes)
        frames.append(convert(frame))

    _scan(source, name, keep, max_frames=max_frames, max_pixels=max_pixels)
    return torch.stack(frames)


def resize_video(video: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize ``[T, C, H, W]`` (or ``[N, T, C, H, W]``) float frames to ``size = (H, W)``.

    Bilinear with antialiasing (so downscaling averages instead of aliasing); values stay in [0, 1].
    Returns the input unchanged when it already has that size.
    """
    height, width = check_size(size)
    if tuple(video.shape[-2:]) == (height, width):
        return video
    lead = video.shape[:-3]
    flat = video.reshape(-1, *video.shape[-3:])
    out = F.interpolate(flat, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).reshape(*lead, video.shape[-3], height, width)


def check_size(size: object) -> tuple[int, int]:
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be a pair of positive integers (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def check_frames(frames: object) -> int:
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    return frames


def sample_and_resize(
    video: Tensor,
    frames: int | None,
    size: tuple[int, int] | None,
    sampling: str,
    generator: torch.Generator | None,
    stride: int = 1,
) -> Tensor:
    """uint8 or float ``[T, C, H, W]`` -> float32 ``[frames, C, H', W']`` (sampled, resized)."""

    if frames is not None:
        indices = sample_indices(
            video.shape[0], check_frames(frames), mode=sampling, stride=stride, generator=generator
        )
        video = video[indices]
    if video.dtype == torch.uint8:
        video = to_float(video)
    if size is not None:
        video = resize_video(video, size)
    return video


def _clip_frame(frame: Tensor, size: tuple[int, int] | None) -> Tensor:
    """One ``[C, H, W]`` frame (uint8 or float) -> float32, resized to ``size``.

    Resizing frame by frame gives the same values as resizing the stacked clip (interpolation works
    on each frame alone) while only one full-size float frame is ever in memory.
    """
    frame = to_float(frame) if frame.dtype == torch.uint8 else frame.to(torch.float32)
    return frame if size is None else resize_video(frame.unsqueeze(0), size)[0]


def read_video(
    path: PathLike,
    *,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    sampling: str = "uniform",
    stride: int = 1,
    generator: torch.Generator | None = None,
    max_frames: int = MAX_FRAMES,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
) -> Tensor:
    """Read a video file (mp4, avi, mkv, webm, ...) into the vidattack layout.

    Frames are sampled while decoding: with ``frames`` set, a first pass counts the frames without
    converting them, the second converts (and resizes) only the sampled ones, so memory stays that of
    the returned clip plus one frame, whatever the length of the video.

    Args:
        path: the video file.
        frames: number of frames to return; ``None`` returns them all. With ``sampling="uniform"``
            (the default) the frames are spread evenly over the whole video (``linspace`` over the
            frame indices, first and last included); a video shorter than ``frames`` repeats frames.
            ``"centre"`` and ``"random"`` take a contiguous snippet (see
            :func:`vidattack.sampling.sample_indices`).
        size: ``(H, W)`` to resize to (bilinear, antialiased); ``None`` keeps the native size.
        sampling: ``"uniform"``, ``"centre"`` or ``"random"``.
        stride: temporal stride of ``"centre"`` / ``"random"`` snippets.
        generator: randomness for ``sampling="random"``.
        max_frames: refuse a video with more frames (:data:`MAX_FRAMES` by default).
        max_pixels: refuse frames with more pixels, height x width (:data:`MAX_PIXELS`).
        max_bytes: refuse when the returned clip would need more bytes as float32 (:data:`MAX_BYTES`).

    Returns:
        ``[T, 3, H, W]`` float32 in [0, 1] (RGB).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: ``cannot decode video 'PATH': ...`` for corrupt or non-video files; a video past a
            limit (naming the file and the limit); bad arguments.
    """
    if size is not None:
        size = check_size(size)
    if frames is not None:
        check_frames(frames)
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {sampling!r}")
    for limit, limit_name in ((max_frames, "max_frames"), (max_pixels, "max_pixels"), (max_bytes, "max_bytes")):
        _check_limit(limit, limit_name)
    path = _check_readable(path)
    name = f"'{path}'"
    convert = _rgb_converter()
    if frames is None:  # every frame: one pass
        clip: list[Tensor] = []

        def keep_all(index: int, frame: Any) -> None:
            height, width = size or (frame.height, frame.width)
            _check_output_bytes(f"video {name}", index + 1, 3, height, width, max_bytes)
            clip.append(_clip_frame(convert(frame), size))

        _scan(str(path), name, keep_all, max_frames=max_frames, max_pixels=max_pixels)
        return torch.stack(clip)

    count, height, width = _scan(str(path), name, None, max_frames=max_frames, max_pixels=max_pixels)
    indices = sample_indices(count, frames, mode=sampling, stride=stride, generator=generator).tolist()
    out_height, out_width = size or (height, width)
    _check_output_bytes(f"video {name}", len(indices), 3, out_height, out_width, max_bytes)
    wanted, kept = set(indices), {}

    def keep_sampled(index: int, frame: Any) -> None:
        if index in wanted:
            kept[index] = _clip_frame(convert(frame), size)

    _scan(str(path), name, keep_sampled, max_frames=max_frames, max_pixels=max_pixels)
    if wanted - kept.keys():
        raise ValueError(f"cannot decode video {name}: frame {min(wanted - kept.keys())} vanished on the second pass")
    return torch.stack([kept[index] for index in indices])


# --------------------------------------------------------------------------------------------------
# Writing


_CODECS = {
    # name: (FFmpeg encoder, pixel format, allowed extensions)
    "ffv1": ("ffv1", "bgr0", (".mkv", ".avi", ".mp4")),
    "h264": ("libx264", "yuv420p", (".mp4", ".mkv", ".avi", ".mov")),
}


def _frames_rgb24(video: Tensor) -> np.ndarray:
    """Validated float ``[T, C, H, W]`` -> ``[T, H, W, 3]`` uint8 (grey-scale repeated to RGB)."""
    validate_video(video, "video", batched=False)
    frames = to_uint8(video.detach().cpu())
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    return np.ascontiguousarray(frames.permute(0, 2, 3, 1).numpy())


def write_video(
    path: PathLike,
    video: Tensor,
    *,
    codec: str = "ffv1",
    fps: float = 25.0,
    crf: int = 18,
) -> Path:
    """Encode ``video`` to ``path``.

    Args:
        path: output file; its extension picks the container (see ``codec``). Missing parent folders
            are created; nothing else is written.
        video: ``[T, C, H, W]`` float in [0, 1], C = 3 (RGB) or 1 (grey, written as RGB).
        codec: ``"ffv1"`` (lossless; ``.mkv``, ``.avi`` or ``.mp4``) or ``"h264"`` (lossy, yuv420p;
            ``.mp4``, ``.mkv``, ``.avi`` or ``.mov``). H.264 4:2:0 needs even sizes, so an odd height or
            width is padded by repeating the last row / column.
        fps: frame rate stored in the file.
        crf: H.264 quality (0-51, lower is better); ignored for FFV1.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {', '.join(_CODECS)}, got {codec!r}")
    if not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    extensions = _CODECS[codec][2]
    path = Path(path)
    if path.suffix.lower() not in extensions:
        raise ValueError(f"codec {codec!r} is written to {', '.join(extensions)} files, got '{path}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    _encode(str(path), f"'{path}'", video, codec=codec, fps=fps, crf=crf)
    return path


def _encode(
    target: str | io.BytesIO, name: str, video: Tensor, *, codec: str, fps: float, crf: int, format: str | None = None
) -> None:
    """Encode ``video [T,C,H,W]`` into ``target`` (a path, or a buffer with its container ``format``)."""
    encoder, pix_fmt, _ = _CODECS[codec]
    frames = _frames_rgb24(video)
    if codec == "h264":
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    av = _av()
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    options = {"crf": str(int(crf)), "preset": "medium"} if codec == "h264" else {}
    try:
        with av.open(target, mode="w", format=format) as container:
            stream = container.add_stream(encoder, rate=rate, options=options)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = pix_fmt
            for array in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except av.FFmpegError as error:
        raise ValueError(f"cannot encode video {name} with {codec}: {error}") from error


def h264_round_trip(video: Tensor, *, crf: int = 23, fps: float = 25.0) -> Tensor:
    """What ``video`` becomes after H.264 encoding and decoding (in memory; nothing is written to disk).

    Adversarial videos are rarely seen by a model as the exact floats an attack produced: uploads are
    re-encoded by the platform. This gives the frames a viewer (or a model behind a video service)
    would decode, to check whether a perturbation survives lossy compression.

    Args:
        video: ``[T, C, H, W]`` or ``[N, T, C, H, W]`` float in [0, 1].
        crf: H.264 quality (0-51; 23 is libx264's default, 18 visually lossless).
        fps: frame rate of the stream (it affects the encoder's rate control little at fixed crf).

    Returns:
        The decoded video, float32 in [0, 1], with the input's shape (odd sizes are cropped back).
    """
    if video.dim() == 5:
        return torch.stack([h264_round_trip(clip, crf=crf, fps=fps) for clip in video])
    if video.dim() != 4:
        raise ValueError(f"video must be [T,C,H,W] or [N,T,C,H,W], got shape {tuple(video.shape)}")
    buffer = io.BytesIO()
    _encode(buffer, "(in memory)", video, codec="h264", fps=fps, crf=crf, format="mp4")
    buffer.seek(0)
    frames = _decode(buffer, "(in memory)")[:, :, : video.shape[2], : video.shape[3]]
    if frames.shape[0] != video.shape[0]:
        raise ValueError(f"H.264 round trip returned {frames.shape[0]} frames for {video.shape[0]}")
    decoded = frames.to(torch.float32).div_(255.0)
    if video.shape[1] == 1:  # grey was written as RGB with equal channels
        decoded = decoded[:, :1]
    return decoded.to(video.device)


def write_lossless(path: PathLike, video: Tensor, *, fps: float = 25.0) -> Path:
    """Write a lossless copy of ``video`` that reads back bit-exactly.

    The file holds FFV1 in the ``bgr0`` pixel format, in Matroska (``.mkv``; ``.avi`` also works).
    Why this choice: FFV1 is lossless, intra-only and decoded by every FFmpeg build (so by PyAV and
    OpenCV); storing RGB directly (``bgr0``) avoids the RGB <-> YUV conversion that even "lossless"
    H.264 (``-qp 0``, yuv444p) rounds through. Reading the file with :func:`read_video` therefore
    gives back exactly ``to_float(to_uint8(video))``: adversarial perturbations of a single level
    out of 255 survive. Frames are rounded to 8 bits (:func:`vidattack.video.to_uint8`).

    Args:
        path: output ``.mkv`` (or ``.avi``) file; missing parent folders are created.
        video: ``[T, C, H, W]`` float in [0, 1], C = 3 or 1 (grey is written as RGB).
        fps: frame rate stored in the file.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mkv", ".avi"):
        raise ValueError(f"write_lossless writes FFV1 to a .mkv (or .avi) file, got '{path}'")
    return write_video(path, video, codec="ffv1", fps=fps)


def write_preview(path: PathLike, video: Tensor, *, fps: float = 8.0, crf: int = 18) -> Path:
    """Write a lossy H.264 ``.mp4`` (yuv420p) that any player or browser shows.

    Odd heights / widths are padded by one repeated row / column (4:2:0 needs even sizes). The
    default 8 fps lets a 16-frame clip play for two seconds. Not for measuring perturbations: use
    :func:`write_lossless` or :func:`save_npz`.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"write_preview writes an H.264 .mp4 file, got '{path}'")
    return write_video(path, video, codec="h264", fps=fps, crf=crf)


# --------------------------------------------------------------------------------------------------
# Tensors


def save_npz(path: PathLike, **tensors: Tensor | np.ndarray) -> Path:
    """Save tensors to a NumPy ``.npz`` file (uncompressed, no pickled objects).

    Each keyword becomes one array (tensors are detached and moved to CPU; bfloat16 is stored as
    float32, which NumPy lacks). The file is written to a temporary name and renamed, so readers never
    see a partial file. Missing parent folders are created.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"save_npz writes a .npz file, got '{path}'")
    if not tensors:
        raise ValueError("save_npz needs at least one tensor")
    arrays = {}
    for name, value in tensors.items():
        if isinstance(value, Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                value = value.to(torch.float32)
            arrays[name] = value.numpy()
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                raise ValueError(f"save_npz cannot store object array {name!r}")
            arrays[name] = value
        else:
            raise ValueError(f"save_npz stores tensors or arrays, got {type(value).__name__} for {name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it creates the file 0600, so the .npz would not share the mode (0666 less the
    # umask) of the files written beside it. O_EXCL keeps the unique-name guarantee.
    tmp_name = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
    handle = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _npz_archive(path: Path) -> zipfile.ZipFile:
    """Open ``path`` as a zip archive; a clear error for what is not one (a renamed .npy, a pickle, ...)."""
    with path.open("rb") as stream:
        head = stream.read(8)
    if head.startswith(b"\x93NUMPY"):
        raise ValueError(f"cannot read npz file '{path}': the file holds a single .npy array, not an .npz archive")
    if head[:1] == b"\x80":  # the opcode every pickle of protocol 2 or more starts with
        raise ValueError(f"cannot read npz file '{path}': the file holds pickled data, which is never loaded")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        what = "the file is empty" if not head else f"not an .npz (zip) archive: {error}"
        raise ValueError(f"cannot read npz file '{path}': {what}") from error


def _npy_header(stream: Any, path: Path, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read the header of one ``.npy`` member: ``(shape, fortran_order, dtype)``, without its data."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read npz file '{path}': array {key!r} has a bad header: {error}") from error
    if dtype.hasobject:
        raise ValueError(
            f"cannot read npz file '{path}': array {key!r} holds Python objects (pickled data), which are never loaded"
        )
    return tuple(int(s) for s in shape), bool(fortran), dtype


def _npz_headers(archive: zipfile.ZipFile, path: Path) -> dict[str, tuple[tuple[int, ...], bool, np.dtype]]:
    headers = {}
    for member in archive.namelist():
        key = member.removesuffix(".npy")
        with archive.open(member) as stream:
            headers[key] = _npy_header(stream, path, key)
    return headers


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def load_npz(path: PathLike, *, max_bytes: int = MAX_NPZ_BYTES) -> dict[str, Tensor]:
    """Load every array of a ``.npz`` file as tensors (``allow_pickle=False``: no code runs).

    The arrays' headers are read first: a file whose arrays would need more than ``max_bytes`` (as
    stored) is refused before any data is decompressed.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: ``cannot read npz file 'PATH': ...`` when it is not a readable ``.npz``, holds pickled
            objects, or holds more than ``max_bytes`` of arrays.
    """
    path = _check_readable(path, "npz file")
    _check_limit(max_bytes, "max_bytes")
    try:
        with _npz_archive(path) as archive:
            headers = _npz_headers(archive, path)
            total = sum(_nbytes(shape, dtype) for shape, _, dtype in headers.values())
            if total > max_bytes:
                sizes = ", ".join(f"{k!r} {shape} {dtype}" for k, (shape, _, dtype) in headers.items())
                raise ValueError(
                    f"cannot read npz file '{path}': its arrays ({sizes}) need {total / 2**20:.0f} MiB, more "
                    f"than max_bytes={max_bytes} allows"
                )
            arrays = {}
            for member in archive.namelist():
                with archive.open(member) as stream:
                    array = np.lib.format.read_array(stream, allow_pickle=False)
                arrays[member.removesuffix(".npy")] = torch.from_numpy(np.array(array))
            return arrays
    except ValueError as error:
        if str(error).startswith("cannot read npz file"):
            raise
        raise ValueError(f"cannot read npz file '{path}': {error}") from error
    except Exception as error:  # zipfile.BadZipFile, zlib.error (corrupt data), EOFError and friends
        raise ValueError(f"cannot read npz file '{path}': {error}") from error


# --------------------------------------------------------------------------------------------------
# JSON


def json_safe(value: Any) -> Any:
    """``value`` made strict-JSON-ready: non-finite floats become ``None`` (JSON ``null``).

    Recurses through dicts, lists and tuples; NumPy scalars become Python numbers. Other objects
    (tensors, paths) are left to the encoder's ``default``.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def json_text(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value`` (:func:`json_safe`, then ``allow_nan=False``; other objects as ``str``).

    Python's :func:`json.dumps` writes ``NaN`` and ``Infinity`` by default, which no JSON parser other
    than Python's accepts; every JSON file and line vidattack writes goes through this function.
    """
    kwargs.setdefault("default", str)
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


# --------------------------------------------------------------------------------------------------
# One entry point for "a video" as the CLI understands it


def load_npz_video(
    path: PathLike,
    *,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    sampling: str = "uniform",
    stride: int = 1,
    generator: torch.Generator | None = None,
    max_frames: int = MAX_FRAMES,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
) -> tuple[Tensor, int | None]:
    """The ``video`` (and optional ``label``) of an ``.npz`` file, sampled while it is read.

    ``video`` is ``[T, C, H, W]`` or ``[1, T, C, H, W]``, uint8 or float in [0, 1]; ``label`` one
    non-negative integer. The array's header is checked against the limits before any data is read;
    frames are then read one at a time from the archive and only the sampled ones kept (float frames
    are all checked for range and finiteness).

    Args:
        frames, size, sampling, stride, generator: as :func:`read_video` (``None``: all frames, native size).
        max_frames, max_pixels, max_bytes: as :func:`read_video`.

    Returns:
        ``(video [T', C, H', W'] float32 in [0, 1], label or None)``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a readable ``.npz``, no ``video``, a bad shape, dtype or value, a bad label, or
            past a limit; the message names the file.
    """
    if size is not None:
        size = check_size(size)
    if frames is not None:
        check_frames(frames)
    for limit, limit_name in ((max_frames, "max_frames"), (max_pixels, "max_pixels"), (max_bytes, "max_bytes")):
        _check_limit(limit, limit_name)
    path = _check_readable(path, "npz file")
    name = f"'video' in '{path}'"
    try:
        with _npz_archive(path) as archive:
            headers = _npz_headers(archive, path)
            if "video" not in headers:
                raise ValueError(
                    f"npz file '{path}' has no 'video' array (keys: {', '.join(sorted(headers)) or 'none'})"
                )
            shape, fortran, dtype = headers["video"]
            if len(shape) == 5:
                if shape[0] != 1:
                    raise ValueError(f"npz file '{path}' holds {shape[0]} videos (shape {shape}); expected one")
                shape = shape[1:]
            if not (dtype == np.uint8 or dtype.kind == "f"):
                raise ValueError(f"{name} must be uint8 frames or floating point in [0, 1], got dtype {dtype}")
            if len(shape) != 4:
                raise ValueError(f"{name} must have rank 4 with layout [T, C, H, W], got shape {shape}")
            count, channels, height, width = shape
            if count == 0 or height == 0 or width == 0:
                raise ValueError(f"{name} must have non-empty T, H and W axes, got shape {shape}")
            if channels not in (1, 3):
                raise ValueError(f"{name} must have 1 or 3 channels at axis 1 of [T, C, H, W], got shape {shape}")
            _check_frame_limits(name, count, height, width, max_frames, max_pixels)
            label = _npz_label(archive, headers, path)
            indices = list(range(count)) if frames is None else sample_indices(
                count, frames, mode=sampling, stride=stride, generator=generator
            ).tolist()
            out_height, out_width = size or (height, width)
            _check_output_bytes(name, len(indices), channels, out_height, out_width, max_bytes)
            if fortran and _nbytes(shape, dtype) > max_bytes:  # read whole (frames are not contiguous)
                raise ValueError(f"{name} is stored in Fortran order and needs more than max_bytes={max_bytes}")
            video = _read_npz_frames(archive, path, shape, dtype, fortran, indices, size)
    except ValueError as error:
        if str(path) in str(error):
            raise
        raise ValueError(f"cannot read npz file '{path}': {error}") from error
    except Exception as error:  # zipfile.BadZipFile, zlib.error (corrupt data), EOFError and friends
        raise ValueError(f"cannot read npz file '{path}': {error}") from error
    return video, label


def _npz_label(archive: zipfile.ZipFile, headers: dict, path: Path) -> int | None:
    if "label" not in headers:
        return None
    shape = headers["label"][0]
    if math.prod(shape) != 1:
        raise ValueError(f"'label' in npz file '{path}' must be one non-negative integer, got shape {shape}")
    with archive.open("label.npy") as stream:
        raw = np.lib.format.read_array(stream, allow_pickle=False).reshape(-1)
    if raw.dtype.kind not in "iu" or int(raw[0]) < 0:
        raise ValueError(f"'label' in npz file '{path}' must be one non-negative integer, got {raw.tolist()}")
    return int(raw[0])


def _read_npz_frames(
    archive: zipfile.ZipFile,
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype,
    fortran: bool,
    indices: list[int],
    size: tuple[int, int] | None,
) -> Tensor:
    """Read the ``video`` member frame by frame, keeping (as float32, resized) the frames in ``indices``."""
    name = f"'video' in '{path}'"
    count, channels, height, width = shape
    frame_bytes = channels * height * width * dtype.itemsize

    def arrays() -> Iterator[np.ndarray]:
        with archive.open("video.npy") as stream:
            if fortran:  # rare (np.savez of a Fortran-ordered array): frames are not contiguous in the file
                yield from np.lib.format.read_array(stream, allow_pickle=False).reshape(shape)
                return
            _npy_header(stream, path, "video")
            for index in range(count):
                data = stream.read(frame_bytes)
                if len(data) != frame_bytes:
                    raise ValueError(f"{name} is truncated: frame {index} of {count} is incomplete")
                yield np.frombuffer(data, dtype=dtype).reshape(channels, height, width)

    wanted, last, kept = set(indices), max(indices), {}
    for index, array in enumerate(arrays()):
        if dtype.kind == "f":  # every float frame is checked, kept or not
            frame = torch.from_numpy(array.astype(np.float32))
            validate_video(frame.unsqueeze(0), name, batched=False)
        elif index > last:
            break  # uint8 frames are always valid: stop at the last one sampled
        elif index in wanted:
            frame = torch.from_numpy(array.copy())
        else:
            continue
        if index in wanted:
            kept[index] = _clip_frame(frame, size)
    return torch.stack([kept[index] for index in indices])


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """Parse TOML ``text``; ``ValueError`` naming ``source`` on a syntax error."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser under its PyPI name (a dependency there)
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{source}: invalid TOML: {error}") from None


def load_toml(path: PathLike) -> dict[str, Any]:
    """Read a TOML file; ``ValueError`` naming the file when it is missing, not UTF-8 text, or invalid."""
    checked = _check_readable(path, "TOML file")
    try:
        text = checked.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"'{checked}' is not a UTF-8 text file (a TOML file was expected)") from None
    return parse_toml(text, f"'{checked}'")
