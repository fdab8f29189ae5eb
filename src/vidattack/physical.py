"""Over-the-air flickering: a simulated channel from an RGB light schedule to the camera, and export of
a flicker perturbation as a light schedule (Pony et al. 2021, Sec. 6; the channel model is ours).

The paper plays ``delta [T, 3]`` on a Wi-Fi RGB bulb lighting the scene and reports the practical
limits it met: the bulb's rise/fall time (which asks for smoother patterns), its limited power, the
mismatch and chromatic cross-talk between the bulb's RGB and the camera's RGB (calibrated away), a
baseline illumination at half power so offsets can be negative, and no synchronisation between the
pattern and the classifier's frames. :func:`apply_channel` simulates these, differentiably, so that a
delta can be evaluated after the channel (:func:`over_the_air_fooling`) or trained through it
(``train_universal_flicker(..., channel=ChannelRanges(...))``: expectation over transformation).

Channel, per video (parameters drawn from :class:`ChannelRanges`, or fixed with :meth:`ChannelParams.fixed`):

1. **Playback and start time**: the schedule is played in a loop with zero-order hold at the camera's
   frame rate, simulated at ``oversample`` sub-steps per frame. The camera starts at an unknown phase
   (integer frames + a fraction of a frame, uniformly over one period) when ``random_start``.
2. **Rise/fall time**: a first-order low-pass of time constant ``rise`` (in frames; a 10-90% rise time
   is ``2.2 * rise``). For a looped schedule the periodic steady state is a circular convolution with
   ``h[k] = (1 - a) a^k / (1 - a^L)``, ``a = exp(-1 / (rise * oversample))``, ``L = T * oversample``.
3. **Exposure**: each camera frame averages the light over ``exposure`` of its frame period.
4. **Colour**: cross-talk ``M`` (identity + off-diagonal leaks) and per-channel ``gain``:
   ``d_cam = gain * (M @ d_light)``.
5. **Scene**: light reflected by the scene scales with the surface's reflectance, so the offset is partly
   multiplicative: ``x' = x + (1 - w) * d + w * k * x * d`` (``w`` = ``reflectance`` mix, ``k`` =
   ``reflect_gain``, 2 by default so that a mid-grey pixel gets the additive offset).
6. **Sensor**: Gaussian noise of std ``noise`` per value, then the [0, 1] clip.

Schedules (:func:`export_schedule`) are CSV and JSON of RGB drive values per time stamp:
``baseline + scale * delta`` clipped to [0, 1] (and 0-255), optionally pre-compensated for a measured
cross-talk/gain (:func:`precompensate`, the paper's chromatic calibration).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidattack import io
from vidattack.result import is_adversarial
from vidattack.video import validate_label, validate_video

__all__ = [
    "ChannelParams",
    "ChannelRanges",
    "light_response",
    "apply_channel",
    "over_the_air_fooling",
    "precompensate",
    "light_schedule",
    "export_schedule",
]


@dataclass(frozen=True)
class ChannelParams:
    """One draw of the channel for ``B`` videos (tensors with a leading ``B`` axis).

    Attributes:
        rise: ``[B]`` low-pass time constant in frames (0: instantaneous light).
        crosstalk: ``[B, 3, 3]`` colour mixing matrix (identity: none).
        gain: ``[B, 3]`` per-channel gain of the light as the camera sees it.
        reflectance: ``[B]`` multiplicative share ``w`` in [0, 1] (0: purely additive offset).
        noise: ``[B]`` sensor noise std (value units).
        phase: ``[B]`` start time in sub-steps, ``0 <= phase < T * oversample``.
        oversample: sub-steps per frame.
        exposure: share of the frame period the sensor integrates, in (0, 1].
        reflect_gain: ``k`` of the multiplicative term.
    """

    rise: Tensor
    crosstalk: Tensor
    gain: Tensor
    reflectance: Tensor
    noise: Tensor
    phase: Tensor
    oversample: int = 4
    exposure: float = 0.5
    reflect_gain: float = 2.0

    @property
    def batch(self) -> int:
        return int(self.rise.shape[0])

    @staticmethod
    def fixed(
        batch: int = 1,
        *,
        rise: float = 0.0,
        crosstalk: Tensor | None = None,
        gain: tuple[float, float, float] | Tensor = (1.0, 1.0, 1.0),
        reflectance: float = 0.0,
        noise: float = 0.0,
        phase: int = 0,
        oversample: int = 4,
        exposure: float = 1.0,
        reflect_gain: float = 2.0,
    ) -> ChannelParams:
        """The same channel for ``batch`` videos (defaults: the ideal channel, exactly ``apply_flicker``)."""
        matrix = torch.eye(3) if crosstalk is None else torch.as_tensor(crosstalk, dtype=torch.float32)
        return ChannelParams(
            rise=torch.full((batch,), float(rise)),
            crosstalk=matrix.reshape(1, 3, 3).expand(batch, 3, 3).clone(),
            gain=torch.as_tensor(gain, dtype=torch.float32).reshape(1, 3).expand(batch, 3).clone(),
            reflectance=torch.full((batch,), float(reflectance)),
            noise=torch.full((batch,), float(noise)),
            phase=torch.full((batch,), int(phase), dtype=torch.long),
            oversample=oversample,
            exposure=exposure,
            reflect_gain=reflect_gain,
        )


@dataclass(frozen=True)
class ChannelRanges:
    """Ranges the channel's parameters are drawn from, uniformly and independently per video.

    Attributes:
        rise: time constant in frames (a cheap bulb: a few hundred ms at 25 fps -> ~1-3 frames).
        crosstalk: each off-diagonal entry of ``M`` in this range (diagonal 1).
        gain: each channel's gain in this range.
        reflectance: multiplicative share ``w``.
        noise: sensor noise std.
        random_start: draw the start phase uniformly over one period (else 0: synchronised).
        oversample, exposure, reflect_gain: see :class:`ChannelParams`.
    """

    rise: tuple[float, float] = (0.0, 1.5)
    crosstalk: tuple[float, float] = (0.0, 0.15)
    gain: tuple[float, float] = (0.7, 1.1)
    reflectance: tuple[float, float] = (0.0, 1.0)
    noise: tuple[float, float] = (0.0, 0.01)
    random_start: bool = True
    oversample: int = 4
    exposure: float = 0.5
    reflect_gain: float = 2.0

    def __post_init__(self) -> None:
        for name in ("rise", "crosstalk", "gain", "reflectance", "noise"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high)) or low > high or low < 0:
                raise ValueError(f"ChannelRanges.{name} must be a range 0 <= low <= high, got {(low, high)}")
        if self.reflectance[1] > 1:
            raise ValueError(f"ChannelRanges.reflectance must lie in [0, 1], got {self.reflectance}")
        if not isinstance(self.oversample, int) or self.oversample < 1:
            raise ValueError(f"ChannelRanges.oversample must be a positive int, got {self.oversample!r}")
        if not 0 < self.exposure <= 1:
            raise ValueError(f"ChannelRanges.exposure must lie in (0, 1], got {self.exposure}")

    def sample(self, batch: int, *, frames: int, generator: torch.Generator | None = None) -> ChannelParams:
        """Draw ``batch`` independent channels for clips of ``frames`` frames."""

        def uniform(bounds: tuple[float, float], *shape: int) -> Tensor:
            low, high = bounds
            return low + (high - low) * torch.rand(shape, generator=generator)

        leaks = uniform(self.crosstalk, batch, 3, 3)
        eye = torch.eye(3).expand(batch, 3, 3)
        crosstalk = torch.where(eye.bool(), eye, leaks)
        period = frames * self.oversample
        phase = (
            torch.randint(period, (batch,), generator=generator)
            if self.random_start
            else torch.zeros(batch, dtype=torch.long)
        )
        return ChannelParams(
            rise=uniform(self.rise, batch),
            crosstalk=crosstalk,
            gain=uniform(self.gain, batch, 3),
            reflectance=uniform(self.reflectance, batch),
            noise=uniform(self.noise, batch),
            phase=phase,
            oversample=self.oversample,
            exposure=self.exposure,
            reflect_gain=self.reflect_gain,
        )


def light_response(offsets: Tensor, params: ChannelParams) -> Tensor:
    """Offsets the camera records, ``[B, T, 3]``, for a schedule ``offsets [T, 3]`` (or ``[B, T, 3]``).

    Steps 1-4 of the module docstring: looped zero-order-hold playback, first-order low-pass, random
    start phase, exposure averaging, cross-talk and gain. Differentiable in ``offsets``. With
    :meth:`ChannelParams.fixed` defaults (``exposure=1``) it returns ``offsets`` unchanged.
    """
    batch, device, dtype = params.batch, offsets.device, offsets.dtype
    if offsets.dim() == 2:
        offsets = offsets.unsqueeze(0).expand(batch, *offsets.shape)
    frames, channels = offsets.shape[1:]
    s = params.oversample
    period = frames * s
    light = offsets.repeat_interleave(s, dim=1)  # [B, L, 3] zero-order hold
    rise = params.rise.to(device=device, dtype=dtype)
    a = torch.where(rise > 0, torch.exp(-1.0 / (rise.clamp(min=1e-6) * s)), torch.zeros_like(rise))  # [B]
    k = torch.arange(period, device=device, dtype=dtype)
    kernel = (1 - a[:, None]) * a[:, None] ** k / (1 - a[:, None] ** period)  # [B, L]
    # Circular convolution = periodic steady state of the first-order filter on the looped schedule.
    spectrum = torch.fft.rfft(light, dim=1) * torch.fft.rfft(kernel, dim=1).unsqueeze(-1)
    light = torch.fft.irfft(spectrum, n=period, dim=1)
    width = max(1, round(params.exposure * s))
    start = params.phase.to(device).long().reshape(batch, 1, 1)
    sub = torch.arange(width, device=device).reshape(1, 1, width)
    frame_start = (torch.arange(frames, device=device) * s).reshape(1, frames, 1)
    index = (frame_start + start + sub) % period  # [B, T, E]
    gathered = light.gather(1, index.reshape(batch, frames * width, 1).expand(-1, -1, channels))
    seen = gathered.reshape(batch, frames, width, channels).mean(dim=2)
    mix = params.crosstalk.to(device=device, dtype=dtype)
    seen = torch.einsum("bij,btj->bti", mix, seen)
    return seen * params.gain.to(device=device, dtype=dtype).unsqueeze(1)


def apply_channel(
    videos: Tensor, offsets: Tensor, params: ChannelParams, *, generator: torch.Generator | None = None
) -> Tensor:
    """The video the camera records when ``offsets`` is played on the scene ``videos [B,T,C,H,W]``.

    Steps 1-6 of the module docstring; differentiable in ``offsets``; output in [0, 1].
    """
    if params.batch != videos.shape[0]:
        raise ValueError(f"params must hold one channel per video ({videos.shape[0]}), got {params.batch}")
    seen = light_response(offsets, params)[..., None, None]  # [B, T, 3, 1, 1]
    w = params.reflectance.to(videos.device, videos.dtype).reshape(-1, 1, 1, 1, 1)
    recorded = videos + (1 - w) * seen + w * params.reflect_gain * videos * seen
    sigma = params.noise.to(videos.device, videos.dtype).reshape(-1, 1, 1, 1, 1)
    if bool((sigma > 0).any()):
        noise = torch.randn(videos.shape, generator=generator, dtype=videos.dtype).to(videos.device)
        recorded = recorded + sigma * noise
    return recorded.clamp(0.0, 1.0)


@torch.no_grad()
def over_the_air_fooling(
    model: Callable[[Tensor], Tensor],
    offsets: Tensor,
    videos: Tensor,
    labels: Tensor | list[int],
    ranges: ChannelRanges,
    *,
    draws: int = 4,
    target: int | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
) -> dict[str, float]:
    """Fooling ratio (%) of ``offsets [T, 3]`` after the simulated channel, ``draws`` channels per video.

    Also reports ``clean_error`` (%): the share of trials misclassified when a zero schedule goes through
    the same channel draws (noise alone), the floor an attack's fooling ratio should be read against.
    """
    validate_video(videos, "videos")
    if isinstance(model, torch.nn.Module):
        model.eval()
    n, frames = videos.shape[:2]
    labels_t = validate_label(labels, n).to(videos.device)
    fooled = clean_fooled = trials = 0
    zero = torch.zeros_like(offsets)
    targets = None
    for _ in range(draws):
        for begin in range(0, n, batch_size):
            chunk = videos[begin : begin + batch_size]
            chunk_labels = labels_t[begin : begin + batch_size]
            params = ranges.sample(chunk.shape[0], frames=frames, generator=generator)
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            noise_gen = torch.Generator().manual_seed(seed)
            adv = apply_channel(chunk, offsets.to(chunk.device), params, generator=noise_gen)
            noise_gen = torch.Generator().manual_seed(seed)
            clean = apply_channel(chunk, zero.to(chunk.device), params, generator=noise_gen)
            if target is not None:
                targets = torch.full_like(chunk_labels, target)
            fooled += int(is_adversarial(model(adv).argmax(1), chunk_labels, targets).sum())
            clean_fooled += int(is_adversarial(model(clean).argmax(1), chunk_labels, targets).sum())
            trials += chunk.shape[0]
    return {
        "fooling_ratio": 100.0 * fooled / trials,
        "clean_error": 100.0 * clean_fooled / trials,
        "trials": trials,
    }


def precompensate(offsets: Tensor, crosstalk: Tensor, gain: Tensor | tuple[float, float, float]) -> Tensor:
    """Drive offsets that make the camera see ``offsets [T, 3]`` through a measured ``crosstalk [3,3]``
    and ``gain [3]`` (the paper's chromatic calibration): ``M^-1 (offsets / gain)`` per frame."""
    gain_t = torch.as_tensor(gain, dtype=offsets.dtype, device=offsets.device).reshape(1, 3)
    matrix = torch.as_tensor(crosstalk, dtype=offsets.dtype, device=offsets.device)
    return torch.linalg.solve(matrix, (offsets / gain_t).T).T


def light_schedule(
    offsets: Tensor, *, fps: float = 25.0, baseline: float = 0.5, scale: float = 1.0, loops: int = 1
) -> list[dict[str, Any]]:
    """Rows ``{"time_s", "frame", "r", "g", "b", "r8", "g8", "b8"}`` of the drive values.

    The light runs at ``baseline`` (the paper: about half power, so offsets can go both ways) plus
    ``scale * delta``, clipped to [0, 1]; one row per frame of ``loops`` repetitions at ``fps``.

    Raises:
        ValueError: bad shape, ``fps <= 0``, ``baseline`` outside [0, 1] or ``loops < 1``.
    """
    if not isinstance(offsets, Tensor) or offsets.dim() != 2 or offsets.shape[1] != 3:
        raise ValueError(f"offsets must be a [T, 3] tensor, got {getattr(offsets, 'shape', type(offsets))}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not 0 <= baseline <= 1:
        raise ValueError(f"baseline must lie in [0, 1], got {baseline}")
    if not isinstance(loops, int) or loops < 1:
        raise ValueError(f"loops must be a positive int, got {loops!r}")
    drive = (baseline + scale * offsets.detach().cpu().double()).clamp(0.0, 1.0)
    rows = []
    frames = drive.shape[0]
    for index in range(frames * loops):
        r, g, b = (float(v) for v in drive[index % frames])
        rows.append(
            {
                "time_s": round(index / fps, 6),
                "frame": index % frames,
                "r": round(r, 6),
                "g": round(g, 6),
                "b": round(b, 6),
                "r8": int(round(r * 255)),
                "g8": int(round(g * 255)),
                "b8": int(round(b * 255)),
            }
        )
    return rows


def export_schedule(
    offsets: Tensor,
    directory: str | Path,
    *,
    fps: float = 25.0,
    baseline: float = 0.5,
    scale: float = 1.0,
    loops: int = 1,
    stem: str = "schedule",
) -> dict[str, str]:
    """Write ``STEM.csv`` and ``STEM.json`` (the light schedule of :func:`light_schedule`) into ``directory``.

    The JSON holds ``fps``, ``period_s``, ``baseline``, ``scale``, ``frames`` and the rows; the CSV the rows.

    Returns:
        ``{"csv": path, "json": path}``.
    """
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise ValueError(f"stem must be a plain file name, got {stem!r}")
    rows = light_schedule(offsets, fps=fps, baseline=baseline, scale=scale, loops=loops)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    document = {
        "fps": fps,
        "period_s": offsets.shape[0] / fps,
        "frames": int(offsets.shape[0]),
        "baseline": baseline,
        "scale": scale,
        "loops": loops,
        "values": "drive level in [0, 1] (r, g, b) and 0-255 (r8, g8, b8) = clip(baseline + scale * delta)",
        "rows": rows,
    }
    json_path.write_text(io.json_text(document, indent=1), encoding="utf-8")
    return {"csv": str(csv_path), "json": str(json_path)}
