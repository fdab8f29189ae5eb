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
import os
import tempfile
from collections.abc import Sequence
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


def decode_video(path: PathLike) -> Tensor:
    """Decode every frame of the first video stream of ``path``.

    Returns:
        ``[T, 3, H, W]`` uint8 RGB frames.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a decodable video, has no video stream or no frames.
    """
    path = _check_readable(path)
    return _decode(str(path), f"'{path}'")


def _decode(source: str | io.BytesIO, name: str) -> Tensor:
    """``[T, 3, H, W]`` uint8 frames of the first video stream of ``source`` (a path or an open buffer)."""
    path = name  # the messages name the file (or buffer) as the caller knows it
    av = _av()
    frames: list[np.ndarray] = []
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.video:
                raise ValueError(f"cannot decode video {path}: the file has no video stream")
            stream = container.streams.video[0]
            # One reformatter for the whole stream: frame.to_ndarray(format=...) sets up a new
            # conversion context per frame, which costs more than decoding a small frame.
            reformatter = av.video.reformatter.VideoReformatter()
            for frame in container.decode(stream):
                frames.append(reformatter.reformat(frame, format="rgb24").to_ndarray())
    except ValueError as error:
        if str(error).startswith("cannot decode video"):
            raise
        raise ValueError(f"cannot decode video {path}: {error}") from error
    except (av.FFmpegError, OSError, RuntimeError, EOFError) as error:
        raise ValueError(f"cannot decode video {path}: {error}") from error
    if not frames:
        raise ValueError(f"cannot decode video {path}: no frames could be decoded")
    shapes = {frame.shape for frame in frames}
    if len(shapes) != 1:
        raise ValueError(
            f"cannot decode video {path}: frame size changes within the stream {sorted(shapes)}"
        )
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


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


def read_video(
    path: PathLike,
    *,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    sampling: str = "uniform",
    stride: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Read a video file (mp4, avi, mkv, webm, ...) into the vidattack layout.

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

    Returns:
        ``[T, 3, H, W]`` float32 in [0, 1] (RGB).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: ``cannot decode video 'PATH': ...`` for corrupt or non-video files; bad arguments.
    """
    if size is not None:
        check_size(size)
    if frames is not None:
        check_frames(frames)

    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {sampling!r}")
    return sample_and_resize(decode_video(path), frames, size, sampling, generator, stride)


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
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def load_npz(path: PathLike) -> dict[str, Tensor]:
    """Load every array of a ``.npz`` file as tensors (``allow_pickle=False``: no code runs).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: ``cannot read npz file 'PATH': ...`` when it is not a readable ``.npz`` (or holds
            pickled objects).
    """
    path = _check_readable(path, "npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("the file holds a single .npy array, not an .npz archive")
            return {name: torch.from_numpy(np.array(data[name])) for name in data.files}
    except (OSError, ValueError, EOFError, KeyError) as error:
        raise ValueError(f"cannot read npz file '{path}': {error}") from error
    except Exception as error:  # zipfile.BadZipFile and friends
        raise ValueError(f"cannot read npz file '{path}': {error}") from error


# --------------------------------------------------------------------------------------------------
# One entry point for "a video" as the CLI understands it


def load_npz_video(path: Path) -> tuple[Tensor, int | None]:
    data = load_npz(path)
    if "video" not in data:
        raise ValueError(
            f"npz file '{path}' has no 'video' array (keys: {', '.join(sorted(data)) or 'none'})"
        )
    video = data["video"]
    if video.dim() == 5:
        if video.shape[0] != 1:
            raise ValueError(
                f"npz file '{path}' holds {video.shape[0]} videos (shape {tuple(video.shape)}); expected one"
            )
        video = video[0]
    if video.dtype == torch.uint8:
        video = to_float(video)
    elif video.is_floating_point():
        video = video.to(torch.float32)
    validate_video(video, f"'video' in '{path}'", batched=False)
    label = None
    if "label" in data:
        raw = data["label"].reshape(-1)
        if raw.numel() != 1 or raw.is_floating_point() or raw.dtype == torch.bool or int(raw[0]) < 0:
            raise ValueError(
                f"'label' in npz file '{path}' must be one non-negative integer, got {raw.tolist()}"
            )
        label = int(raw[0])
    return video, label


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
