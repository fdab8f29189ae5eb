"""A synthetic action-recognition test bed whose class is a *motion*.

Real data sets cannot be downloaded here, so models are trained and attacked on clips rendered on the
fly. Each clip shows one foreground object (a hand-written digit from scikit-learn's bundled digits, or
a simple shape) that performs one of ten motions (:data:`MOTION_CLASSES`), over a smooth textured
background that drifts in a random direction *independent of the class*, with one or two soft
distractor blobs wandering randomly and per-frame Gaussian noise. So:

* a single frame does not reveal the class (the object's pose in one frame is compatible with every
  motion), and shuffling the frames of a clip destroys it (:func:`frame_shuffled`);
* the object is two-toned (split along a random line through its centre), so rotations of
  rotation-symmetric shapes (disc, ring, square) are still visible;
* motions are large enough to see at 32x32: translations cover 27-45% of the frame width, rotations
  100-170 degrees, zooms a factor 1.9-2.6, oscillations 1.5-2.5 cycles.

Each clip also carries an *appearance* label (which object: ``digit_0`` ... ``digit_9`` and six shapes,
:data:`APPEARANCE_CLASSES`), a second task used to pre-train image backbones. Digit instances are
partitioned by split (60% train / 20% val / 20% test of each digit's scikit-learn samples), so test
clips show digit images never seen in training.

Determinism: clip ``i`` of a split is a pure function of ``(config.seed, split, i)`` (its random
parameters come from ``numpy.random.default_rng([seed, split_code, stream, i])``), so
``synth:test:7`` is the same clip whether it is generated alone, in a batch, or as part of the whole
split. Scene parameters are drawn in resolution-independent units, so the same index at another size or
frame count shows the same scene and motion. Rendering is done in float64 and quantised to 8-bit levels
(``k / 255``): videos written with :func:`vidattack.io.write_lossless` read back identical.

Coordinates: the canvas spans [-1, 1] on both axes (x to the right, y *down*, as on screen); an object
rotating with increasing angle therefore turns clockwise on screen.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MOTION_CLASSES",
    "APPEARANCE_CLASSES",
    "SPLITS",
    "LAYOUTS",
    "BEDS",
    "DATA_NAMES",
    "data_name",
    "SynthConfig",
    "SynthClips",
    "generate",
    "load_split",
    "SyntheticVideoDataset",
    "frame_shuffled",
    "layout_class_names",
    "write_layout",
]

#: The ten motion classes, in label order (stable: models trained on the test bed depend on it).
MOTION_CLASSES: tuple[str, ...] = (
    "translate_left",
    "translate_right",
    "translate_up",
    "translate_down",
    "rotate_cw",
    "rotate_ccw",
    "zoom_in",
    "zoom_out",
    "oscillate",
    "still",
)

_SHAPES: tuple[str, ...] = ("square", "disc", "triangle", "cross", "ring", "star")

#: The appearance classes (which object is shown), in label order: ten digits then six shapes.
APPEARANCE_CLASSES: tuple[str, ...] = tuple(f"digit_{d}" for d in range(10)) + _SHAPES

SPLITS: tuple[str, ...] = ("train", "val", "test")
LAYOUTS: tuple[str, ...] = ("ucf101", "hmdb51", "kinetics")
#: The test beds: ``motion`` (appearance independent of the class) and ``scene``
#: (:mod:`vidattack.data.scene`: the same motions, with a class-dependent look).
BEDS: tuple[str, ...] = ("motion", "scene")
#: Each test bed's name on the command line (``--data``) and in clip references (``synth:test:3``).
DATA_NAMES: dict[str, str] = {"synth": "motion", "scene": "scene"}

_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
# Independent random streams per clip, so adding draws to one never shifts another.
_STREAM_PARAMS, _STREAM_LABELS, _STREAM_NOISE = 0, 1, 2
# Bump when the renderer changes what a (seed, split, index) looks like; it keys the on-disk cache.
GENERATOR_VERSION = 1

_NUM_WAVES = 5  # sinusoids summed into the background texture
_NUM_BLOBS = 2  # distractor slots (a clip uses one or two)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Attributes:
        frames: frames per clip (>= 2; motions span the whole clip whatever the count).
        size: frame height and width in pixels (>= 8), rendered directly at this size.
        seed: the test bed's seed (>= 0); with the split and the index it fixes every clip.
        n_train, n_val, n_test: clips per split (labels are balanced in blocks of ten).
        clutter: draw the drifting texture, the distractor blobs and the noise. ``False`` gives clean
            clips on a flat background (for figures and debugging), with the same objects and motions.
        bed: ``"motion"`` (this module) or ``"scene"`` (:mod:`vidattack.data.scene`: same motions,
            background and object drawn from class-specific distributions).
    """

    frames: int = 16
    size: int = 32
    seed: int = 0
    n_train: int = 3000
    n_val: int = 500
    n_test: int = 500
    clutter: bool = True
    bed: str = "motion"

    def __post_init__(self) -> None:
        if self.bed not in BEDS:
            raise ValueError(f"SynthConfig.bed must be one of {', '.join(BEDS)}, got {self.bed!r}")
        for name, low in (
            ("frames", 2),
            ("size", 8),
            ("seed", 0),
            ("n_train", 0),
            ("n_val", 0),
            ("n_test", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"SynthConfig.{name} must be an integer >= {low}, got {value!r}")

    def __repr__(self) -> str:
        # Written by hand so that motion configs print (and key caches) as before ``bed`` existed.
        shown = [f"{key}={value!r}" for key, value in asdict(self).items() if key != "bed" or value != "motion"]
        return f"SynthConfig({', '.join(shown)})"

    def n_for(self, split: str) -> int:
        """Number of clips in ``split``."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[_check_split(split)]


@dataclass(frozen=True)
class SynthClips:
    """A batch of test-bed clips.

    Attributes:
        videos: ``[N, T, 3, H, W]`` float32 in [0, 1] (values are multiples of 1/255).
        labels: ``[N]`` long, motion class indices into ``class_names``.
        appearance: ``[N]`` long, object indices into ``appearance_names``.
        class_names: :data:`MOTION_CLASSES`.
        appearance_names: :data:`APPEARANCE_CLASSES`.
        split: the split the clips come from.
        indices: the clip indices within the split, one per video.
    """

    videos: Tensor
    labels: Tensor
    appearance: Tensor
    class_names: tuple[str, ...] = MOTION_CLASSES
    appearance_names: tuple[str, ...] = APPEARANCE_CLASSES
    split: str = "test"
    indices: tuple[int, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.labels.shape[0])


#: How each bed other than ``motion`` redraws the look of a motion clip's parameters, registered by the
#: bed's own module (:mod:`vidattack.data.scene`, imported with the package) so that this module does
#: not depend on it.
_BED_LOOKS: dict[str, Callable[[dict, SynthConfig, str, int], dict]] = {}


def register_bed_look(bed: str, restyle: Callable[[dict, SynthConfig, str, int], dict]) -> None:
    """Register how test bed ``bed`` (one of :data:`BEDS`) redraws a motion clip's look."""
    if bed not in BEDS or bed == "motion":
        raise ValueError(f"bed must be one of {', '.join(b for b in BEDS if b != 'motion')}, got {bed!r}")
    _BED_LOOKS[bed] = restyle


def data_name(config: SynthConfig) -> str:
    """The test bed's name in ``--data`` and clip references: ``synth`` (motion) or ``scene``."""
    return next(name for name, bed in DATA_NAMES.items() if bed == config.bed)


def _check_split(split: str) -> str:
    if split not in _SPLIT_CODE:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


# --------------------------------------------------------------------------------------------------
# Sprites


@lru_cache(maxsize=1)
def _digit_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 bundled 8x8 digits as float [0, 1] and their classes (loaded once).

    The bundled ``digits.csv.gz`` is read directly when it can be located without importing
    scikit-learn (whose import costs seconds in every process); ``load_digits`` is the fallback.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        data_file = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if data_file.is_file():
            table = np.loadtxt(data_file, delimiter=",", dtype=np.float64)
            if table.shape == (1797, 65):
                return (table[:, :64].reshape(-1, 8, 8) / 16.0), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float64), digits.target.astype(np.int64)


@lru_cache(maxsize=4)
def _digit_pools(split: str) -> tuple[np.ndarray, ...]:
    """For each digit, the indices of the scikit-learn samples reserved for ``split`` (60/20/20)."""
    _, targets = _digit_data()
    pools = []
    for digit in range(10):
        members = np.flatnonzero(targets == digit)
        cut_val, cut_test = int(0.6 * len(members)), int(0.8 * len(members))
        part = {"train": members[:cut_val], "val": members[cut_val:cut_test], "test": members[cut_test:]}
        pools.append(part[split])
    return tuple(pools)


def _sprite_resolution(size: int) -> int:
    # The sprite is sampled bilinearly; a sprite a bit larger than the object on screen avoids blur
    # without the aliasing of sampling a much finer one.
    return 32 if size <= 48 else 64


@lru_cache(maxsize=4)
def _shape_bank(resolution: int) -> Tensor:
    """The six shapes as alpha masks ``[6, R, R]`` float64, antialiased by 4x supersampling."""
    fine = resolution * 4
    axis = (torch.arange(fine, dtype=torch.float64) + 0.5) / fine * 2 - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    r = torch.sqrt(x**2 + y**2)
    theta = torch.atan2(y, x)
    masks = []
    for shape in _SHAPES:
        if shape == "square":
            mask = (x.abs() <= 0.68) & (y.abs() <= 0.68)
        elif shape == "disc":
            mask = r <= 0.8
        elif shape == "triangle":
            # Upright triangle (apex at the top, y down): inside the three half-planes.
            mask = (y <= 0.62) & (y >= -0.8 + 1.7 * x.abs())
        elif shape == "cross":
            mask = ((x.abs() <= 0.25) & (y.abs() <= 0.8)) | ((y.abs() <= 0.25) & (x.abs() <= 0.8))
        elif shape == "ring":
            mask = (r <= 0.82) & (r >= 0.48)
        else:  # five-pointed star: radius oscillating with the angle
            mask = r <= 0.42 + 0.4 * torch.cos(5 * (theta + math.pi / 2)).clamp(min=0) ** 1.5
        masks.append(mask.to(torch.float64))
    bank = torch.stack(masks).unsqueeze(1)
    return F.avg_pool2d(bank, 4).squeeze(1)


def _digit_sprites(sample_indices: Sequence[int], resolution: int) -> Tensor:
    """Upsampled digit alpha masks ``[N, R, R]`` float64 for scikit-learn sample indices."""
    images, _ = _digit_data()
    small = torch.from_numpy(images[np.asarray(sample_indices, dtype=np.int64)]).unsqueeze(1)
    # A one-pixel empty border keeps the upsampled stroke away from the sprite edge.
    small = F.pad(small, (1, 1, 1, 1))
    big = F.interpolate(small, size=(resolution, resolution), mode="bicubic", align_corners=False)
    # The 8x8 digits are blurry grey; a contrast ramp turns them into crisp strokes.
    return ((big - 0.25) / 0.35).clamp(0.0, 1.0).squeeze(1)


# --------------------------------------------------------------------------------------------------
# Per-clip random parameters


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _clip_label(seed: int, code: int, index: int) -> int:
    # Labels are a random permutation of the ten classes within each block of ten consecutive
    # indices: balanced over any ten-aligned range, yet not predictable from the index alone.
    block, offset = divmod(index, len(MOTION_CLASSES))
    order = np.random.default_rng([seed, code, _STREAM_LABELS, block]).permutation(len(MOTION_CLASSES))
    return int(order[offset])


def _clip_params(config: SynthConfig, split: str, index: int) -> dict[str, np.ndarray | int | float]:
    """Every random choice for one clip, in resolution-independent units (canvas = [-1, 1]^2).

    The number and order of draws is fixed whatever the class, so the parameters of one clip never
    depend on anything but ``(seed, split, index)``.
    """
    code = _SPLIT_CODE[split]
    rng = np.random.default_rng([config.seed, code, _STREAM_PARAMS, index])
    label = _clip_label(config.seed, code, index)
    motion = MOTION_CLASSES[label]
    p = np.linspace(0.0, 1.0, config.frames)

    appearance = int(rng.integers(len(APPEARANCE_CLASSES)))
    instance_u = float(rng.random())

    # --- foreground motion -------------------------------------------------------------------
    base_scale = rng.uniform(0.36, 0.5)  # object half-size: 36-50% of the frame width
    base_angle = rng.uniform(-0.5, 0.5)  # upright +- 29 degrees, so 6 and 9 stay distinguishable
    travel = rng.uniform(0.55, 0.9)  # translation: 27-45% of the frame width
    along_u, across_u = rng.random(), rng.uniform(-1.0, 1.0)
    spin = math.radians(rng.uniform(100.0, 170.0))
    zoom = rng.uniform(1.9, 2.6)
    small_scale = rng.uniform(0.22, 0.3)
    osc_amp, osc_cycles = rng.uniform(0.28, 0.45), rng.uniform(1.5, 2.5)
    osc_dir, osc_phase = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    centre = rng.uniform(-0.4, 0.4, size=2)  # rotate / zoom / oscillate / still

    cx = np.full_like(p, centre[0])
    cy = np.full_like(p, centre[1])
    scale = np.full_like(p, base_scale)
    angle = np.full_like(p, base_angle)
    if motion.startswith("translate"):
        limit = 1.0 - 0.5 * base_scale  # keep the centre (and most of the object) in view
        start = -limit + along_u * (2 * limit - travel)
        along = start + travel * p
        across = np.full_like(p, 0.6 * limit * across_u)
        sign = {"left": -1.0, "right": 1.0, "up": -1.0, "down": 1.0}[motion.split("_")[1]]
        along = along if sign > 0 else -along
        if motion in ("translate_left", "translate_right"):
            cx, cy = along, across
        else:
            cx, cy = across, along
    elif motion in ("rotate_cw", "rotate_ccw"):
        angle = base_angle + (1.0 if motion == "rotate_cw" else -1.0) * spin * p
    elif motion in ("zoom_in", "zoom_out"):
        exponent = p if motion == "zoom_in" else 1.0 - p
        scale = small_scale * zoom**exponent
    elif motion == "oscillate":
        swing = osc_amp * np.sin(2 * math.pi * osc_cycles * p + osc_phase)
        cx = centre[0] + swing * math.cos(osc_dir)
        cy = centre[1] + swing * math.sin(osc_dir)

    # --- colours: object contrasts with the background in brightness -------------------------
    dark_background = bool(rng.random() < 0.5)
    low, high = (0.05, 0.45) if dark_background else (0.55, 0.95)
    # Two texture colours from opposite ends of the band, so the texture (and its drift) is visible.
    bg_colours = np.stack((rng.uniform(low, low + 0.15, size=3), rng.uniform(high - 0.15, high, size=3)))
    bg_colours = bg_colours[rng.permutation(2)]
    hue = rng.random()
    hue_gap = rng.uniform(0.3, 0.7)
    sats = rng.uniform(0.5, 1.0, size=2)
    vals = rng.uniform(0.8, 1.0, size=2) if dark_background else rng.uniform(0.25, 0.45, size=2)
    colour_a = _hsv_to_rgb(hue, sats[0], vals[0])
    colour_b = _hsv_to_rgb((hue + hue_gap) % 1.0, sats[1] if dark_background else 1.0, vals[1])
    split_angle = rng.uniform(0, 2 * math.pi)

    # --- drifting background texture ---------------------------------------------------------
    wave_cycles = rng.uniform(0.6, 2.5, size=_NUM_WAVES)  # cycles per frame width
    wave_dirs = rng.uniform(0, 2 * math.pi, size=_NUM_WAVES)
    wave_phase = rng.uniform(0, 2 * math.pi, size=_NUM_WAVES)
    wave_amp = rng.uniform(0.5, 1.0, size=_NUM_WAVES)
    drift_speed, drift_dir = rng.uniform(0.15, 0.6), rng.uniform(0, 2 * math.pi)

    # --- distractor blobs: smooth random paths ----------------------------------------------
    n_blobs = int(rng.integers(1, _NUM_BLOBS + 1))
    blob_start = rng.uniform(-0.7, 0.7, size=(_NUM_BLOBS, 2))
    blob_velocity = rng.uniform(-0.4, 0.4, size=(_NUM_BLOBS, 2))
    blob_wiggle = rng.uniform(-0.25, 0.25, size=(_NUM_BLOBS, 2, 3)) / np.arange(1, 4)
    blob_wiggle_phase = rng.uniform(0, 2 * math.pi, size=(_NUM_BLOBS, 2, 3))
    blob_sigma = rng.uniform(0.07, 0.13, size=_NUM_BLOBS)
    blob_colour = rng.uniform(0.0, 1.0, size=(_NUM_BLOBS, 3))
    blob_alpha = rng.uniform(0.5, 0.85, size=_NUM_BLOBS)
    blob_front = rng.random(size=_NUM_BLOBS) < 0.3
    blob_alpha[n_blobs:] = 0.0
    harmonics = np.arange(1, 4)
    wiggle = (
        blob_wiggle[..., None] * np.sin(2 * math.pi * harmonics[:, None] * p + blob_wiggle_phase[..., None])
    ).sum(axis=2)  # [blobs, 2, T]
    blob_path = blob_start[..., None] + blob_velocity[..., None] * p + wiggle

    noise_std = rng.uniform(0.01, 0.035)

    return {
        "label": label,
        "appearance": appearance,
        "instance_u": instance_u,
        "cx": cx,
        "cy": cy,
        "scale": scale,
        "angle": angle,
        "colour_a": colour_a,
        "colour_b": colour_b,
        "split_angle": split_angle,
        "bg_colours": bg_colours,
        "wave_freq_x": math.pi * wave_cycles * np.cos(wave_dirs),
        "wave_freq_y": math.pi * wave_cycles * np.sin(wave_dirs),
        "wave_phase": wave_phase,
        "wave_amp": wave_amp,
        "drift_x": drift_speed * math.cos(drift_dir) * p,
        "drift_y": drift_speed * math.sin(drift_dir) * p,
        "blob_x": blob_path[:, 0],
        "blob_y": blob_path[:, 1],
        "blob_sigma": blob_sigma,
        "blob_colour": blob_colour,
        "blob_alpha_back": np.where(blob_front, 0.0, blob_alpha),
        "blob_alpha_front": np.where(blob_front, blob_alpha, 0.0),
        "noise_std": noise_std,
    }


# --------------------------------------------------------------------------------------------------
# Rendering


def _sprites_for(params: list[dict], split: str, resolution: int) -> Tensor:
    """Alpha masks ``[N, 1, R, R]`` float64 for the clips' objects."""
    sprites = torch.empty(len(params), resolution, resolution, dtype=torch.float64)
    digit_rows, digit_samples = [], []
    shapes = _shape_bank(resolution)
    pools = _digit_pools(split)
    for row, clip in enumerate(params):
        appearance = clip["appearance"]
        if appearance < 10:
            pool = pools[appearance]
            digit_rows.append(row)
            digit_samples.append(int(pool[min(int(clip["instance_u"] * len(pool)), len(pool) - 1)]))
        else:
            sprites[row] = shapes[appearance - 10]
    if digit_rows:
        sprites[digit_rows] = _digit_sprites(digit_samples, resolution)
    return sprites.unsqueeze(1)


def _stack(params: list[dict], key: str) -> Tensor:
    return torch.from_numpy(np.stack([np.asarray(clip[key], dtype=np.float64) for clip in params]))


def _render_uint8(params: list[dict], config: SynthConfig, split: str) -> Tensor:
    """Render clips ``[N, T, 3, H, W]`` uint8.

    Per-frame quantities (trajectories, trigonometry, blob profiles) are computed in float64; the
    full-size work is plain float32 arithmetic (no fused or transcendental ops), which IEEE rounding
    makes identical in vectorised and scalar code paths. Nothing reduces across clips, so a clip
    renders identically whatever else is in the batch.
    """
    n, frames, size = len(params), config.frames, config.size
    f32 = torch.float32
    coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]

    def per_frame(key: str) -> Tensor:  # [N, T, 1, 1]
        return _stack(params, key).view(n, frames, 1, 1)

    # Background: a sum of drifting plane waves. sin(a + b) = sin a cos b + cos a sin b with a
    # depending on x and b on y turns the texture into a rank-2K product [H, 2K] @ [2K, W] per frame.
    bg = _stack(params, "bg_colours").to(f32)  # [N, 2, 3]
    low, high = bg[:, 0].view(n, 1, 3, 1, 1), bg[:, 1].view(n, 1, 3, 1, 1)
    if config.clutter:
        fx, fy = _stack(params, "wave_freq_x"), _stack(params, "wave_freq_y")  # [N, K]
        phase, amp = _stack(params, "wave_phase"), _stack(params, "wave_amp")
        drift_x, drift_y = _stack(params, "drift_x"), _stack(params, "drift_y")  # [N, T]
        a = fx[:, None, :, None] * (coords.view(1, 1, 1, size) - drift_x[:, :, None, None])
        a = a + phase[:, None, :, None]  # [N, T, K, W]
        b = fy[:, None, :, None] * (coords.view(1, 1, 1, size) - drift_y[:, :, None, None])  # [N, T, K, H]
        # A sum of K random waves has a standard deviation of ~sqrt(sum amp^2 / 2); scaling by it (not
        # by the worst case sum amp) and clamping gives a texture that uses the whole colour range.
        weight = (0.35 * amp / amp.square().sum(dim=1, keepdim=True).sqrt())[:, None, :, None]
        left = torch.cat((weight * torch.cos(b), weight * torch.sin(b)), dim=2)  # [N, T, 2K, H]
        right = torch.cat((torch.sin(a), torch.cos(a)), dim=2)  # [N, T, 2K, W]
        texture = (0.5 + left.transpose(2, 3) @ right).clamp_(0.0, 1.0)  # [N, T, H, W]
        video = low + (high - low) * texture.to(f32).unsqueeze(2)  # [N, T, 3, H, W]
    else:
        video = low.expand(n, frames, 3, size, size).clone()

    # Distractor blobs: a separable Gaussian profile per frame.
    blob_weights: list[tuple[Tensor, Tensor, Tensor]] = []
    if config.clutter:
        bx, by = _stack(params, "blob_x"), _stack(params, "blob_y")  # [N, B, T]
        sigma, colour = _stack(params, "blob_sigma"), _stack(params, "blob_colour").to(f32)
        back, front = _stack(params, "blob_alpha_back"), _stack(params, "blob_alpha_front")
        for blob in range(_NUM_BLOBS):
            two_var = 2 * sigma[:, blob].view(n, 1, 1) ** 2
            gx = torch.exp(-((coords.view(1, 1, size) - bx[:, blob, :, None]) ** 2) / two_var)  # [N, T, W]
            gy = torch.exp(-((coords.view(1, 1, size) - by[:, blob, :, None]) ** 2) / two_var)  # [N, T, H]
            profile = (gy[:, :, :, None] * gx[:, :, None, :]).to(f32).unsqueeze(2)  # [N, T, 1, H, W]
            blob_weights.append(
                (profile, colour[:, blob].view(n, 1, 3, 1, 1), torch.stack((back[:, blob], front[:, blob])))
            )

    def composite_blobs(video: Tensor, layer: int) -> Tensor:
        for profile, colour, alphas in blob_weights:
            alpha = alphas[layer].to(f32)
            # Most clips have a blob in only one layer (and half have a single blob): blend just the
            # clips that have one here. Per-element arithmetic is the same either way.
            rows = torch.nonzero(alpha > 0).flatten()
            if rows.numel() == 0:
                continue
            part = video[rows]
            weight = profile[rows] * alpha[rows].view(-1, 1, 1, 1, 1)
            video[rows] = part + (colour[rows] - part) * weight
        return video

    video = composite_blobs(video, 0)

    # Foreground: inverse-map every pixel into sprite coordinates, then sample the sprite bilinearly.
    cx, cy = per_frame("cx"), per_frame("cy")
    scale, angle = per_frame("scale"), per_frame("angle")
    cos, sin = (torch.cos(angle) / scale).to(f32), (torch.sin(angle) / scale).to(f32)
    dx = (coords.view(1, 1, 1, size) - cx).to(f32)  # [N, T, 1, W]
    dy = (coords.view(1, 1, size, 1) - cy).to(f32)  # [N, T, H, 1]
    u = cos * dx + sin * dy  # [N, T, H, W]
    v = cos * dy - sin * dx
    grid = torch.stack((u, v), dim=-1).view(n, frames * size, size, 2)
    sprites = _sprites_for(params, split, _sprite_resolution(size)).to(f32)
    alpha = F.grid_sample(sprites, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    alpha = alpha.view(n, frames, 1, size, size)
    # Two-tone fill split along a line through the object's centre (a clamped linear ramp rather than
    # a sigmoid, to stay in exact arithmetic): breaks the rotational symmetry of discs and squares.
    split_angle = _stack(params, "split_angle")
    dir_u = (3.0 * torch.cos(split_angle)).to(f32).view(n, 1, 1, 1)
    dir_v = (3.0 * torch.sin(split_angle)).to(f32).view(n, 1, 1, 1)
    tone = (u * dir_u + v * dir_v + 0.5).clamp_(0.0, 1.0).unsqueeze(2)
    colour_a = _stack(params, "colour_a").to(f32).view(n, 1, 3, 1, 1)
    colour_b = _stack(params, "colour_b").to(f32).view(n, 1, 3, 1, 1)
    fill = colour_a + (colour_b - colour_a) * tone
    video = video + (fill - video) * alpha

    video = composite_blobs(video, 1)

    if config.clutter:
        code = _SPLIT_CODE[split]
        for row, clip in enumerate(params):
            # One generator per clip: the noise of clip i never depends on its neighbours.
            seed = np.random.default_rng([config.seed, code, _STREAM_NOISE, clip["index"]]).integers(2**62)
            generator = torch.Generator().manual_seed(int(seed))
            noise = torch.randn((frames, 3, size, size), generator=generator, dtype=f32)
            video[row] += noise * float(clip["noise_std"])
    return video.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


def _chunk_size(config: SynthConfig) -> int:
    # About 256k pixels per chunk keeps the float32 intermediates (~3 MB each) cache-friendly.
    return max(1, 262_144 // (config.frames * config.size * config.size))


def _generate_uint8(
    split: str, config: SynthConfig, indices: Sequence[int], progress: Callable[[int], None] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Clips as uint8 ``[N, T, 3, H, W]`` with their motion and appearance labels."""
    n = len(indices)
    videos = torch.empty(n, config.frames, 3, config.size, config.size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.long)
    appearance = torch.empty(n, dtype=torch.long)
    step = _chunk_size(config)
    for start in range(0, n, step):
        chunk = [int(i) for i in indices[start : start + step]]
        params = []
        for index in chunk:
            clip = _clip_params(config, split, index)
            if config.bed != "motion":
                clip = _BED_LOOKS[config.bed](clip, config, split, index)
            clip["index"] = index
            params.append(clip)
        videos[start : start + len(chunk)] = _render_uint8(params, config, split)
        labels[start : start + len(chunk)] = torch.tensor([c["label"] for c in params])
        appearance[start : start + len(chunk)] = torch.tensor([c["appearance"] for c in params])
        if progress is not None:
            progress(len(chunk))
    return videos, labels, appearance


def _check_indices(indices: Iterable[int] | None, split: str, config: SynthConfig) -> tuple[int, ...]:
    if indices is None:
        return tuple(range(config.n_for(split)))
    values = tuple(indices)
    for value in values:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"indices must be non-negative integers, got {value!r}")
    return tuple(int(v) for v in values)


def generate(
    split: str, config: SynthConfig = SynthConfig(), *, indices: Iterable[int] | None = None
) -> SynthClips:
    """Render test-bed clips.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        config: sizes and seed (:class:`SynthConfig`).
        indices: which clips of the split (default: all ``config.n_for(split)``). Any non-negative
            index is a valid clip; the split sizes only say how many make up a split.

    Returns:
        :class:`SynthClips` with ``videos [N, T, 3, H, W]`` float32 in [0, 1] (``N = len(indices)``),
        motion ``labels [N]`` and ``appearance [N]``. Clip ``i`` is identical however it is requested.
    """
    _check_split(split)
    chosen = _check_indices(indices, split, config)
    videos, labels, appearance = _generate_uint8(split, config, chosen)
    return SynthClips(
        videos=videos.to(torch.float32).div_(255.0),
        labels=labels,
        appearance=appearance,
        split=split,
        indices=chosen,
    )


# --------------------------------------------------------------------------------------------------
# Whole splits, cached


def _cache_path(cache_dir: Path, split: str, config: SynthConfig) -> Path:
    fields = asdict(config)
    if config.bed == "motion":
        del fields["bed"]  # motion caches written before scene existed stay valid
    key = json.dumps({"version": GENERATOR_VERSION, "split": split, **fields}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    n = config.n_for(split)
    return cache_dir / f"{data_name(config)}-{split}-t{config.frames}-s{config.size}-seed{config.seed}-n{n}-{digest}.npz"


def _load_split_uint8(
    split: str, config: SynthConfig, cache_dir: str | os.PathLike | None
) -> tuple[Tensor, ...]:
    _check_split(split)
    n = config.n_for(split)
    path = None
    if cache_dir is not None:
        path = _cache_path(Path(cache_dir), split, config)
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = (data["videos"], data["labels"], data["appearance"])
                expected = (n, config.frames, 3, config.size, config.size)
                if arrays[0].shape == expected and arrays[0].dtype == np.uint8:
                    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is simply regenerated
    videos, labels, appearance = _generate_uint8(split, config, range(n))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so concurrent readers never see a partial file.
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, videos=videos.numpy(), labels=labels.numpy(), appearance=appearance.numpy())
            os.replace(tmp_name, path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    return videos, labels, appearance


def load_split(
    split: str, config: SynthConfig = SynthConfig(), cache_dir: str | os.PathLike | None = None
) -> SynthClips:
    """The whole split as :class:`SynthClips` (``videos [n, T, 3, H, W]`` float32 in [0, 1]).

    With ``cache_dir`` the split is stored there as uint8 ``.npz`` (keyed by the config and the
    generator version) and reloaded on later calls. Note the float32 result of the default train split
    takes ~590 MB; :class:`SyntheticVideoDataset` keeps uint8 (~150 MB) and converts per item.
    """
    videos, labels, appearance = _load_split_uint8(split, config, cache_dir)
    return SynthClips(
        videos=videos.to(torch.float32).div_(255.0),
        labels=labels,
        appearance=appearance,
        split=split,
        indices=tuple(range(config.n_for(split))),
    )


class SyntheticVideoDataset(torch.utils.data.Dataset):
    """A test-bed split as a torch Dataset.

    ``dataset[i]`` is ``(video [T, 3, H, W] float32 in [0, 1], label int)`` where the label is the
    motion class (``task="motion"``) or the object (``task="appearance"``). The split is rendered once
    at construction (seconds) and kept as uint8.

    Attributes:
        class_names: the names of the chosen task's classes.
        labels: ``[n]`` long, the task's labels.
    """

    def __init__(
        self,
        split: str,
        config: SynthConfig = SynthConfig(),
        task: str = "motion",
        *,
        cache_dir: str | os.PathLike | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if task not in ("motion", "appearance"):
            raise ValueError(f"task must be 'motion' or 'appearance', got {task!r}")
        self.split, self.config, self.task, self.transform = split, config, task, transform
        self._videos, motion, appearance = _load_split_uint8(split, config, cache_dir)
        self.labels = motion if task == "motion" else appearance
        self.class_names = MOTION_CLASSES if task == "motion" else APPEARANCE_CLASSES

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        video = self._videos[index].to(torch.float32).div_(255.0)
        if self.transform is not None:
            video = self.transform(video)
        return video, int(self.labels[index])


def frame_shuffled(videos: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A copy of ``videos`` with the frames of each clip in a random order.

    A model that really uses motion drops to chance on shuffled clips, while one that reads single
    frames does not. Accepts ``[N, T, C, H, W]`` or ``[T, C, H, W]``; the input is not modified.
    """
    from vidattack.video import validate_video

    single = isinstance(videos, Tensor) and videos.dim() == 4
    batch = videos.unsqueeze(0) if single else videos
    validate_video(batch, "videos", check_range=False)
    frames = batch.shape[1]
    order = torch.stack([torch.randperm(frames, generator=generator) for _ in range(batch.shape[0])])
    rows = torch.arange(batch.shape[0]).unsqueeze(1)
    shuffled = batch[rows, order.to(batch.device)]
    return shuffled[0] if single else shuffled


# --------------------------------------------------------------------------------------------------
# Writing the test bed in the layouts of real data sets


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def layout_class_names(layout: str) -> tuple[str, ...]:
    """Motion class names as written by :func:`write_layout`, in :data:`MOTION_CLASSES` order.

    UCF-101 uses CamelCase (``TranslateLeft``), HMDB-51 lower case with underscores
    (``translate_left``), Kinetics lower case with spaces (``translate left``). Pass the result as
    ``classes=`` to the folder datasets to get labels in the test bed's order.
    """
    if layout == "ucf101":
        return tuple(_camel(name) for name in MOTION_CLASSES)
    if layout == "hmdb51":
        return MOTION_CLASSES
    if layout == "kinetics":
        return tuple(name.replace("_", " ") for name in MOTION_CLASSES)
    raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def _youtube_id(seed: int, split: str, index: int) -> tuple[str, int]:
    """A deterministic 11-character YouTube-like id and a start second for a clip."""
    digest = hashlib.blake2b(f"vidattack-synth-{seed}-{split}-{index}".encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11], int.from_bytes(digest[-2:], "big") % 600


def write_layout(
    root: str | os.PathLike,
    layout: str,
    config: SynthConfig = SynthConfig(),
    *,
    splits: Sequence[str] = ("train", "test"),
    codec: str = "ffv1",
    limit_per_split: int | None = None,
    fps: int = 25,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write the test bed as video files in the layout of a real data set, under ``root``.

    Layouts (``C`` = class name from :func:`layout_class_names`):

    * ``"ucf101"``: ``root/C/v_C_gGG_cNN.avi``; ``root/ucfTrainTestlist/classInd.txt`` ("1 C" lines),
      ``trainlist01.txt`` ("C/v_C_gGG_cNN.avi LABEL", 1-based) and ``testlist01.txt`` (path only).
      As in the official split 1, test clips use groups 1-7 and training clips groups 8-25. Only
      the train and test splits exist.
    * ``"hmdb51"``: ``root/C/NAME.avi``; ``root/testTrainMulti_7030_splits/C_test_split1.txt`` with
      "NAME.avi ID" lines, ID 1 = train, 2 = test, 0 = unused (the val split is written with 0).
    * ``"kinetics"``: ``root/SPLIT/C/YTID_SSSSSS_EEEEEE.mp4`` (``.mkv`` for FFV1) and
      ``root/annotations/{train,validate,test}.csv`` with the official columns
      ``label,youtube_id,time_start,time_end,split,is_cc``. Unlike the official test CSV, the test
      labels are included so the split can be evaluated.

    Args:
        root: output directory (created if missing); nothing is written outside it.
        layout: ``"ucf101"``, ``"hmdb51"`` or ``"kinetics"``.
        config: the test bed to write.
        splits: which splits to write.
        codec: ``"ffv1"`` (lossless: reading back gives the generated clips exactly) or ``"h264"``.
        limit_per_split: write only the first N clips of each split.
        fps: frame rate stored in the files.
        progress: called with the number of clips written after each one (for progress bars).

    Returns:
        ``root`` as a :class:`~pathlib.Path`. A ``synth_meta.json`` records the config used.
    """
    from vidattack.io import write_video

    names = layout_class_names(layout)
    if codec not in ("ffv1", "h264"):
        raise ValueError(f"codec must be 'ffv1' or 'h264', got {codec!r}")
    splits = tuple(splits)
    for split in splits:
        _check_split(split)
        if layout == "ucf101" and split == "val":
            raise ValueError("the ucf101 layout has only train and test splits; drop 'val' from splits")
    if limit_per_split is not None and limit_per_split < 0:
        raise ValueError(f"limit_per_split must be >= 0, got {limit_per_split}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)

    ucf_lists: dict[str, list[str]] = {"train": [], "test": []}
    hmdb_lines: dict[str, list[str]] = {name: [] for name in names}
    kinetics_rows: dict[str, list[str]] = {}
    for split in splits:
        n = config.n_for(split)
        if limit_per_split is not None:
            n = min(n, limit_per_split)
        per_class_count = [0] * len(names)
        step = max(1, min(256, _chunk_size(config)))
        for start in range(0, n, step):
            indices = range(start, min(n, start + step))
            videos, labels, _ = _generate_uint8(split, config, indices)
            for offset, index in enumerate(indices):
                label = int(labels[offset])
                name = names[label]
                count = per_class_count[label]
                per_class_count[label] += 1
                if layout == "ucf101":
                    first, groups = (8, 18) if split == "train" else (1, 7)
                    group, clip = first + count % groups, count // groups + 1
                    relative = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                    ucf_lists[split].append(relative if split == "test" else f"{relative} {label + 1}")
                elif layout == "hmdb51":
                    file_name = f"Synth_{split}{index:05d}_{name}_u_cm_np1_fr_med_0.avi"
                    relative = f"{name}/{file_name}"
                    hmdb_lines[name].append(f"{file_name} {dict(train=1, test=2, val=0)[split]}")
                else:
                    youtube_id, start_s = _youtube_id(config.seed, split, index)
                    extension = "mp4" if codec == "h264" else "mkv"
                    relative = f"{split}/{name}/{youtube_id}_{start_s:06d}_{start_s + 10:06d}.{extension}"
                    kinetics_rows.setdefault(split, []).append(
                        f"{name},{youtube_id},{start_s},{start_s + 10},{split},False"
                    )
                video = videos[offset].to(torch.float32).div_(255.0)
                write_video(root / relative, video, codec=codec, fps=fps)
                if progress is not None:
                    progress(1)

    if layout == "ucf101":
        lists = root / "ucfTrainTestlist"
        lists.mkdir(exist_ok=True)
        (lists / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(names)))
        if "train" in splits:
            (lists / "trainlist01.txt").write_text("".join(line + "\n" for line in ucf_lists["train"]))
        if "test" in splits:
            (lists / "testlist01.txt").write_text("".join(line + "\n" for line in ucf_lists["test"]))
    elif layout == "hmdb51":
        lists = root / "testTrainMulti_7030_splits"
        lists.mkdir(exist_ok=True)
        for name in names:
            (lists / f"{name}_test_split1.txt").write_text("".join(line + "\n" for line in hmdb_lines[name]))
    else:
        annotations = root / "annotations"
        annotations.mkdir(exist_ok=True)
        for split, rows in kinetics_rows.items():
            csv_name = {"train": "train", "val": "validate", "test": "test"}[split]
            header = "label,youtube_id,time_start,time_end,split,is_cc\n"
            (annotations / f"{csv_name}.csv").write_text(header + "".join(row + "\n" for row in rows))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "layout": layout,
        "codec": codec,
        "splits": list(splits),
        "limit_per_split": limit_per_split,
        "class_names": list(names),
        **asdict(config),
    }
    (root / "synth_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root
