"""Video Square Attack: score-based random search with frame-block squares (model-agnostic).

The attack needs no gradient estimate and no prior trained on any data. It follows the L-inf Square
Attack of Andriushchenko et al. (ECCV 2020, Sec. 3 and 3.1) and adapts it to video:

* the perturbation lives on the corners of the eps-ball (every entry ``+eps`` or ``-eps``), as in
  Square Attack's L-inf version;
* initialisation with *vertical stripes* (Sec. 3.1): each column of each channel gets one random sign,
  here shared by the frames of a block of ``frame_block`` consecutive frames, so the start is already
  coherent in space and time;
* each update draws a *square* of side ``s`` at a random position in a random block of ``frame_block``
  frames (a cuboid ``frames x s x s``) and sets it to one random sign per channel; it is kept only if
  it lowers the loss. ``s`` follows Square Attack's schedule: the square covers a share ``p`` of the
  frame, ``p`` starting at ``p_init`` and halved at fixed query counts (Sec. 3.1 / the paper's
  appendix schedule, ``schedule``), so the search goes from coarse to fine;
* *moving squares* (``moving``): a share of the squares drift through the frames of their block at a
  random velocity of at most ``speed`` pixels per frame instead of staying put, so the candidate adds
  motion (a small object moving over the scene) rather than a static pattern; video classifiers read
  motion, and on the zoo's motion classifiers these candidates fool the hardest clips sooner;
* *motion prior* (``motion_prior``): a share of the square positions is drawn in proportion to how much
  the clean clip changes under the square (absolute frame differences, summed over frames and
  channels), the rest uniformly: where things move is where a video classifier looks (the idea of
  ME-Sampler, Zhang et al. 2020, which draws its noise from the clip's motion); it needs only the
  clean clip, no model and no data;
* *guided signs* (``guided``): every answer of the oracle, also a rejected candidate's, says how
  ``log P(label)`` changed when one square changed the clip; a running estimate of the gradient per
  clip entry is fitted to these finite differences (the quantity NES and Bandits, Ilyas et al. 2018
  and 2019, estimate gradients from, with the square as the direction; see :func:`_learn_gradient`),
  and a square's sign per channel is the one that lowers the loss under that estimate, where a
  random sign points the wrong way half the time; a share of the squares (``frame_signs``, by
  default half) take that sign per run of ``frame_group`` frames (default 4) instead of once for
  their block, so they can change sign in time where the model answers to temporal change. The
  squares' positions stay random (choosing them by the estimate too was worse);
* **batched**: each round draws ``candidates`` squares per video around the current point and sends
  all of them, for all attacked videos, in *one* oracle call; the best candidate is kept if it
  improves the loss. Square Attack proposes one square per query; batching spends a few more queries
  per accepted update but keeps the model busy (the wall time is spent in the model's forward).

Loss through a top-1 oracle (the threat model of V-BAD, Sec. 3.1): untargeted, the probability of the
true label while it is the top-1 (any other top-1 is success); targeted, the negated probability of
the target while it is the top-1. A top-1 oracle says nothing about the target's score until it is the
top-1, so the targeted attack starts, like V-BAD's Alg. 1, from a video of the target class
(``start_video``, the attacker's own data) and shrinks the L-inf distance to the clean video: each
round proposes half of its squares at a smaller radius (the whole perturbation clipped to it) and half
at the current radius, keeps the smallest radius that keeps the target (ties: the highest target
probability), else the best improvement of the target's probability, and adapts the shrink size to
what worked.

Every query goes through the oracle, which counts it and refuses (before the model runs) any call
past the per-video budget; candidates are trimmed to each video's remaining budget, so the budget is
used to the last query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidattack.attacks.blackbox_pgd import start_candidates
from vidattack.result import AttackResult, TracePoint
from vidattack.threat import QueryBudgetExceeded, ScoreOracle
from vidattack.video import numpy_views, validate_label_and_target, validate_video

__all__ = ["video_square", "SQUARE_SCHEDULE"]

#: Query counts at which the square's area share ``p`` is halved: Square Attack's schedule for a
#: 10,000-query budget (Andriushchenko et al. 2020, appendix "p" schedule).
SQUARE_SCHEDULE: tuple[int, ...] = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)

# how far ahead moving squares are drawn: rounds, and square pixels (x channels) of all those rounds
_PLAN_ROUNDS, _PLAN_PIXELS = 32, 200_000


@dataclass
class _State:
    """The search state of one attacked video (shapes ``[T,C,H,W]``)."""

    owner: int
    clean: Tensor
    label: int
    target: int  # -1: untargeted
    adv: Tensor
    radius: float  # current L-inf radius of the perturbation (targeted: shrinks to eps)
    loss: float = math.inf
    top: int = -1
    success: bool = False
    done: bool = False
    stop: str = ""
    rounds: int = 0
    decay: float = 0.0
    failures: int = 0
    side: int = 0
    trace: list[TracePoint] = field(default_factory=list)
    pending: tuple[Tensor, list[float]] | None = None  # candidates [K,T,C,H,W] and their radii
    drawn: list[int] = field(default_factory=list)  # index into ``patterns`` of each candidate in flight
    tries: list[float] = field(default_factory=list)  # per pattern: candidates drawn / that improved
    wins: list[float] = field(default_factory=list)
    bases: dict[float, Tensor] = field(default_factory=dict)  # radius -> adv clipped to it (see _base)
    bases_of: Tensor | None = None  # the adv those were clipped from
    # moving squares' candidate buffer [K * T*C*H*W + 1] (see _moving_squares): the base it was filled
    # with, and the flat indices (in one clip, in the buffer) of the squares last written into it with
    # the base's values there as read then (NumPy path, guided squares; else None)
    tiles: Tensor | None = None
    tiles_of: Tensor | None = None
    tiles_written: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    # made once with the buffer: its K candidates [K,T,C,H,W] (a view) and flat NumPy views of the
    # buffer and of the clean clip for _write_squares (None where the clip's dtype has none)
    tiles_rows: Tensor | None = None
    tiles_arrays: tuple[np.ndarray, np.ndarray] | None = None
    base_array: tuple[Tensor, np.ndarray] | None = None  # the last base and its flat NumPy view
    plan: _SquarePlan | None = None  # moving squares drawn ahead (see _plan_squares)
    energy: np.ndarray | None = None  # [H, W] motion energy of the clean clip (motion prior), or None
    motion_prior: float = 0.0
    cdfs: dict[int, np.ndarray] = field(default_factory=dict)  # square side -> position distribution
    guided: float = 0.0  # share of the moving squares whose signs follow ``gradient``
    frame_signs: float = 0.0  # share of those whose signs follow it in time, per run of frame_group frames
    frame_group: int = 1
    # float64 [T*C*H*W + 1]: estimate of d log P / d clip (see _learn_gradient); the last entry stays 0
    # (cut square pixels point at it)
    gradient: np.ndarray | None = None
    # the round's moving squares for _learn_gradient: their entries of ``gradient`` [K, m], what each
    # changes there (float64 [K, m], 0 on cut pixels), the squared norms of those changes [K], and the
    # estimate on the first square as read for the signs [m] (None: not read)
    changes: tuple[np.ndarray, np.ndarray, list[float], np.ndarray | None] | None = None


def _side(
    queries: int, p_init: float, schedule: Sequence[int], height: int, width: int, min_side: int = 1
) -> int:
    """Square side for the ``queries`` spent so far: ``round(sqrt(p * H * W))``, ``min_side <= side < min(H, W)``."""
    p = p_init / 2 ** sum(queries > q for q in schedule)
    side = max(int(round(math.sqrt(p * height * width))), min_side)
    return max(1, min(side, min(height, width) - 1))


def _motion_energy(clean: Tensor) -> np.ndarray:
    """``float64 [H, W]``: how much the clip ``[T,C,H,W]`` changes at each pixel, ``sum_t sum_c
    |x[t+1] - x[t]|`` (zeros for a single frame)."""
    changes = (clean[1:] - clean[:-1]).abs().sum(dim=(0, 1))  # a single frame: the sum of nothing, zeros
    return changes.detach().to("cpu", torch.float64).numpy()


def _position_cdf(energy: np.ndarray, side: int, share: float) -> np.ndarray:
    """Cumulative distribution ``[(H - side + 1) * (W - side + 1)]`` of a square's top-left corner
    (row-major): a ``share`` of the mass in proportion to the motion ``energy [H, W]`` under the
    square, the rest uniform (every position keeps a chance; all uniform where nothing moves)."""
    height, width = energy.shape
    summed = np.zeros((height + 1, width + 1))
    summed[1:, 1:] = energy.cumsum(0).cumsum(1)
    under = summed[side:, side:] - summed[:-side, side:] - summed[side:, :-side] + summed[:-side, :-side]
    uniform = np.full(under.size, 1.0 / under.size)
    total = float(under.sum())
    pdf = uniform if total <= 0 else share * under.reshape(-1) / total + (1.0 - share) * uniform
    cdf = np.cumsum(pdf)
    return cdf / cdf[-1]


def _placement(state: _State, side: int) -> np.ndarray | None:
    """The video's position distribution for squares of ``side`` under its motion prior (computed once
    per side), or ``None`` without a prior (uniform positions)."""
    if state.energy is None:
        return None
    cdf = state.cdfs.get(side)
    if cdf is None:
        cdf = state.cdfs[side] = _position_cdf(state.energy, side, state.motion_prior)
    return cdf


def _positions(cdf: np.ndarray, uniforms: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left rows and columns for ``uniforms`` in [0, 1) drawn through ``cdf`` (inverse transform);
    ``columns`` = ``W - side + 1``."""
    flat = np.minimum(np.searchsorted(cdf, uniforms, side="right"), cdf.size - 1)
    return flat // columns, flat % columns


def _stripes(clean: Tensor, eps: float, frame_block: int, generator: torch.Generator) -> Tensor:
    """Vertical-stripe start ``clean + eps * sign`` with one sign per (frame block, channel, column)."""
    frames, channels, _, width = clean.shape
    blocks = math.ceil(frames / frame_block)
    signs = torch.randint(0, 2, (blocks, channels, 1, width), generator=generator).to(clean) * 2 - 1
    signs = signs.repeat_interleave(frame_block, dim=0)[:frames]
    return (clean + eps * signs).clamp(0.0, 1.0)


def _delta(state: _State, radius: float) -> Tensor:
    """The current perturbation clipped to ``radius`` (a new tensor ``[T,C,H,W]``)."""
    return (state.adv - state.clean).clamp(-radius, radius)


def _temporal_signs(period: int, length: int, generator: torch.Generator) -> Tensor:
    """A square's sign over the ``length`` frames of its block ``[length]`` (+-1): all +1 for ``period``
    0, else a sign that flips every ``period`` frames from a random phase (a flicker of ``2 * period``
    frames; the phase is the only draw, so ``period`` 0 draws nothing)."""
    if period == 0:
        return torch.ones(length)
    phase = int(torch.randint(0, 2 * period, (1,), generator=generator))
    return 1.0 - 2.0 * (((torch.arange(length) + phase) // period) % 2).float()


def _square(
    state: _State, radius: float, side: int, frame_block: int, generator: torch.Generator, period: int = 0
) -> Tensor:
    """A candidate: the current point clipped to ``radius`` with one static cuboid set to ``+-radius`` per
    channel (times the cuboid's temporal sign pattern, see :func:`_temporal_signs`)."""
    clean = state.clean
    frames, channels, height, width = clean.shape
    delta = _delta(state, radius)
    length = min(frame_block, frames)
    cdf = _placement(state, side)
    # Square Attack redraws a square whose window would not change; a few tries suffice.
    for _ in range(4):
        t0 = int(torch.randint(0, frames - length + 1, (1,), generator=generator))
        if cdf is None:
            r0 = int(torch.randint(0, height - side + 1, (1,), generator=generator))
            c0 = int(torch.randint(0, width - side + 1, (1,), generator=generator))
        else:
            u = torch.rand(1, dtype=torch.float64, generator=generator).numpy()
            rows, cols = _positions(cdf, u, width - side + 1)
            r0, c0 = int(rows[0]), int(cols[0])
        signs = torch.randint(0, 2, (1, channels, 1, 1), generator=generator).to(clean) * 2 - 1
        signs = signs * _temporal_signs(period, length, generator).to(clean).view(-1, 1, 1, 1)
        window = (slice(t0, t0 + length), slice(None), slice(r0, r0 + side), slice(c0, c0 + side))
        if not torch.equal(delta[window], (radius * signs).expand_as(delta[window])):
            break
    delta[window] = radius * signs
    return (clean + delta).clamp(0.0, 1.0)


def _base(state: _State, radius: float) -> Tensor:
    """The current point clipped to ``radius`` ``[T,C,H,W]`` (read-only): every pixel of a moving-square
    candidate outside its square. The point itself at its own radius (every untargeted round); a
    smaller radius (targeted shrinks) is cached until the point moves."""
    if radius == state.radius:
        # the current point lies in its own ball (every accepted candidate was built in it): no clip
        return state.adv
    if state.bases_of is not state.adv:
        state.bases, state.bases_of = {}, state.adv
    base = state.bases.get(radius)
    if base is None:
        base = state.bases[radius] = (state.clean + _delta(state, radius)).clamp(0.0, 1.0)
    return base


@dataclass
class _SquarePlan:
    """Moving squares drawn ahead for the next rounds at one square side (see :func:`_plan_squares`)."""

    key: tuple[Any, ...]  # (clip shape, squares per round, side, block length, speed)
    # [R, K*C*L*side*side] (channel before frame, so a square's sign per channel broadcasts over long
    # rows): flat index of each square pixel in one clip (cut pixels, off the frame: frame 0's first pixel
    # in the pixel's channel)
    pixel: np.ndarray
    index: np.ndarray  # [R, same] the same pixel in the K stacked candidates (cut pixels: a scratch tail)
    estimate_at: np.ndarray  # [R, same] the same pixel in the gradient estimate (cut pixels: its zero tail)
    inside: np.ndarray  # [R, same] bool: the pixel is on the frame (not cut)
    sign: np.ndarray  # [R, K, C] int8 +-1, one sign per channel
    phase: np.ndarray  # [R, K] uniform draw of each square's flicker phase
    used: int = 0  # rows handed out


def _plan_squares(
    shape: tuple[int, ...],
    count: int,
    side: int,
    length: int,
    speed: float,
    rounds: int,
    generator: torch.Generator,
    cdf: np.ndarray | None = None,
) -> _SquarePlan:
    """Draw ``rounds`` rounds of ``count`` moving squares for clips of ``shape`` ``(T, C, H, W)`` at
    once: one generator call and one pass of index arithmetic for all of them (NumPy, whose
    small-array operations cost a fraction of PyTorch's), where doing it round by round took about
    half of building a round's candidates on a small model (line profile on lrcn-synth). The geometry
    does not depend on the current point, only on the side (and, with a motion prior, on the position
    distribution ``cdf`` of :func:`_position_cdf`, from one uniform per square)."""
    frames, channels, height, width = shape
    # per square: first frame, velocity (2), midpoint (2), flicker phase, channel signs; an integer is
    # floor(u * n) of a float64 uniform (53 random bits: the bias is below 1e-13)
    draw = torch.rand(rounds, count, 6 + channels, dtype=torch.float64, generator=generator).numpy()
    starts = (draw[..., 0] * (frames - length + 1)).astype(np.int64)  # [R, K]
    velocity = (draw[..., None, 1:3] * 2.0 - 1.0) * speed  # at most `speed` px per frame [R, K, 1, 2]
    if cdf is None:
        # the trajectory's midpoint is uniform over the square positions, so every pixel can be reached
        mids = np.floor(draw[..., None, 3:5] * np.array([height - side + 1, width - side + 1]))
    else:  # a motion prior: the midpoint from its distribution (every position keeps a chance)
        rows, cols = _positions(cdf, draw[..., 3], width - side + 1)
        mids = np.stack([rows, cols], axis=-1)[..., None, :].astype(np.float64)
    # top-left corner in each frame l of the block [R, K, L, 2]: mid + v * (l - (L - 1) / 2), rounded
    drift = (np.arange(length, dtype=np.float64) - (length - 1) / 2).reshape(-1, 1)
    corner = np.rint(mids + velocity * drift).astype(np.int64)
    rows = corner[..., :1, None] + np.arange(side).reshape(-1, 1)  # [R, K, L, side, 1]
    cols = corner[..., 1:, None] + np.arange(side)  # [R, K, L, 1, side]
    on_frame = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)  # [R, K, L, side, side]
    plane, clip = height * width, frames * channels * height * width
    first = (starts[..., None] + np.arange(length)) * (channels * plane)  # [R, K, L]
    pixel = np.where(on_frame, first[..., None, None] + rows * width + cols, 0)[:, :, None]
    pixel = pixel + np.arange(0, channels * plane, plane).reshape(-1, 1, 1, 1)  # [R, K, C, L, side, side]
    inside = np.broadcast_to(on_frame[:, :, None], pixel.shape)
    offsets = (np.arange(count) * clip).reshape(-1, 1, 1, 1, 1)
    index = np.where(inside, pixel + offsets, count * clip)
    estimate_at = np.where(inside, pixel, clip)
    sign = 1 - 2 * (draw[..., 6:] < 0.5).astype(np.int8)
    key = (tuple(shape), count, side, length, speed)
    flat = (pixel, index, estimate_at, inside)
    return _SquarePlan(key, *(a.reshape(rounds, -1) for a in flat), sign, draw[..., 5])


def _moving_squares(
    state: _State,
    radii: Sequence[float],
    side: int,
    frame_block: int,
    generator: torch.Generator,
    speed: float,
    periods: Sequence[int] | None = None,
    ahead: int = 1,
) -> Tensor:
    """``len(radii)`` candidates ``[K,T,C,H,W]``, each with one *moving* square, built in one batched operation.

    Candidate ``k`` is the current point clipped to ``radii[k]`` with a ``side x side`` square set to
    ``+-radii[k]`` (one sign per channel) that drifts at a random velocity of at most ``speed`` pixels
    per frame along each axis through a block of ``frame_block`` frames (cut where it leaves the frame),
    so it adds motion rather than a static pattern; its sign may also flip every ``periods[k]`` frames
    (a flicker of ``2 * periods[k]`` frames from a random phase; ``None``: never). The squares come
    from the video's plan (:func:`_plan_squares`), drawn for up to ``ahead`` rounds at this side
    when the plan runs out or the side changes; all candidates' squares are written at once, by flat
    index, into a buffer kept from round to round (the candidates are views of it, valid until the
    next call for this video).
    """
    clean = state.clean
    frames, channels, height, width = clean.shape
    length = min(frame_block, frames)
    count = len(radii)
    plan, key = state.plan, (tuple(clean.shape), count, side, length, speed)
    if plan is None or plan.used == len(plan.pixel) or plan.key != key:
        # at most _PLAN_ROUNDS rounds, and a few hundred thousand indices (large squares on large clips)
        ahead = max(1, min(ahead, _PLAN_ROUNDS, _PLAN_PIXELS // (count * length * side * side * channels)))
        plan = state.plan = _plan_squares(key[0], count, side, length, speed, ahead, generator, _placement(state, side))
    row = plan.used
    pixel, index, sign = plan.pixel[row], plan.index[row], plan.sign[row][..., None]  # sign [K, C, 1]
    plan.used += 1
    flicker: np.ndarray | None = None  # [K, L] +-1: each square's sign over the frames of its block
    if periods is not None:
        # a flicker of period k: the sign flips every k frames from a random phase in [0, 2k)
        given = np.array(periods, dtype=np.int64)[:, None]
        period = np.maximum(given, 1)
        phase = (plan.phase[row, :, None] * 2 * period).astype(np.int64)
        flicker = 1 - 2 * np.where(given > 0, ((np.arange(length) + phase) // period) % 2, 0).astype(np.int8)
    clip = clean.numel()
    guided = int(round(state.guided * count)) if state.gradient is not None else 0
    at = plan.estimate_at[row]
    drawn = sign[:guided, :, 0]
    if flicker is not None:
        sign = sign * flicker[:, None]  # [K, C, L]
    estimate: np.ndarray | None = None  # the estimate on the squares' pixels, as the signs read it
    if guided:
        in_time = int(round(state.frame_signs * guided))
        estimate = state.gradient[at]
        steered = _guided_signs(estimate, (count, channels, length), drawn, flicker, in_time, state.frame_group)
        if guided == count:
            sign = steered
        else:  # the others keep their drawn signs, over the frames if the guided ones vary in time
            sign = np.concatenate([steered, np.repeat(sign[guided:], steered.shape[2] // sign.shape[2], axis=2)])
    single = radii.count(radii[0]) == count  # untargeted: every candidate at the current radius
    # every other pixel is the current point clipped to the candidate's radius
    flat = state.tiles
    accepted = -1
    if flat is not None:
        # the last round's candidates are rows of the buffer, about to be rewritten: keep the accepted one
        offset = state.adv.data_ptr() - flat.data_ptr()
        if 0 <= offset < (flat.shape[0] - 1) * flat.element_size():
            accepted = offset // (clip * flat.element_size())
            state.adv = state.adv.clone()
    bases = [_base(state, radii[0])] * count if single else [_base(state, r) for r in radii]
    same = single or all(b is bases[0] for b in bases)
    # (buffer index, clip index, values): the base's values there, or None to read them
    restore: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    shared: np.ndarray | None = None  # clip indices to copy from the base into every candidate
    reusable = flat is not None and flat.shape[0] == count * clip + 1 and same
    if reusable and (accepted >= 0 or bases[0] is state.tiles_of):
        # Every row holds the base the buffer was filled with but for its own square of the last
        # round; the new base is that base, or that base with the accepted row's square. So: each
        # row's last square back to the new base, and the accepted square into every row. This
        # replaces copying the clip K times each round (a sixth of building the candidates on lrcn-synth).
        # (the base's values on the last squares, read for their change, are still the base's but
        # where an accepted square changed it, which the shared copy writes afterwards)
        last_pixel, last_index, last_values = state.tiles_written
        restore = last_index, last_pixel, last_values
        if accepted >= 0:
            shared = last_pixel.reshape(count, -1)[accepted]
        candidates, arrays = state.tiles_rows, state.tiles_arrays
    else:
        flat = torch.empty(count * clip + 1, dtype=clean.dtype, device=clean.device)
        candidates = flat[: count * clip].view(count, *clean.shape)
        torch.stack(bases, out=candidates)
        views = numpy_views(flat, clean)
        arrays = None if views is None else (views[0], views[1].reshape(-1))
        state.tiles, state.tiles_rows, state.tiles_arrays = (flat, candidates, arrays) if same else (None, None, None)
    state.tiles_of = bases[0]
    # the base has a NumPy view where the clip has one (the same dtype, on the same device); it
    # changes only when a candidate is accepted
    views = None
    if arrays is not None:
        if state.base_array is None or state.base_array[0] is not bases[0]:
            state.base_array = bases[0], bases[0].detach().numpy().reshape(-1)
        views = [arrays[0], state.base_array[1], arrays[1]]
    # [K, C, 1 or L]: the radius times the signs (+-1), exact in the clip's dtype on the NumPy path
    # (the radius rounded to it, as converting the float64 product would), else float64
    dtype = np.dtype(np.float64) if views is None else views[0].dtype
    value = sign * dtype.type(radii[0]) if single else sign * np.array(radii, dtype=dtype).reshape(-1, 1, 1)
    written = _write_squares(flat, bases[0], restore, shared, clean, pixel, index, value[..., None], views)
    kept = None  # the base's values on the squares where read below on the NumPy path (the next restore)
    if state.gradient is not None:
        # what each candidate changes on its square, for _learn_gradient once the answers are in
        if isinstance(written, Tensor):
            written = written.to("cpu", torch.float64).numpy()
        before = _values(bases[0], pixel) if views is None else views[1][pixel]
        kept = None if views is None else before
        change = np.where(plan.inside[row], np.subtract(written, before, dtype=np.float64), 0.0)
        change = change.reshape(count, -1)
        # the norms while the change is in the cache; the estimate does not move before the fit, so
        # the first square's entries read for the signs are still its entries then
        norms = np.einsum("km,km->k", change, change).tolist()
        first = None if estimate is None else estimate[: change.shape[1]]
        state.changes = at.reshape(count, -1), change, norms, first
    state.tiles_written = pixel, index, kept
    return candidates


def _guided_signs(
    estimate: np.ndarray,
    shape: tuple[int, int, int],
    drawn: np.ndarray,
    flicker: np.ndarray | None,
    in_time: int = 0,
    group: int = 1,
) -> np.ndarray:
    """``int8 [G, C, L]`` +-1 (``[G, C, 1]`` without ``flicker`` and ``in_time``): the signs of the
    first G of a round's squares over the L frames of their block, from the video's gradient estimate
    on the round's square pixels, ``estimate [K * C * L * side * side]`` (0 on cut pixels; ``shape`` is
    ``(K, C, L)``); ``drawn [G, C]``: their random signs.

    Per channel, the sign that lowers the loss to first order under the estimate, ``-sign(sum of the
    estimate over the square)``, each frame's term times the square's ``flicker [K, L]`` sign there
    (the square keeps its flicker); the last ``in_time`` of the G squares instead get that sign per
    run of ``group`` consecutive frames, from the sum over the run alone (no flicker; the last run may
    be shorter), so such a square changes sign in time where the estimate asks for it. Where a sum is
    still zero, the drawn sign."""
    (count, channels, length), rows = shape, len(drawn)
    if flicker is None and in_time and length % group == 0:
        # the defaults' case, in fewer NumPy calls (they are most of its cost): the sums per run of
        # frames [G, C, R] and, after them, over the block, signed at once
        runs = estimate.reshape(count, channels, length // group, -1)[:rows].sum(axis=3)
        chosen = _descent_signs(np.concatenate([runs, runs.sum(axis=2, keepdims=True)], axis=2), drawn[..., None])
        signs = np.empty((rows, channels, length // group, group), dtype=np.int8)
        signs[: rows - in_time] = chosen[: rows - in_time, :, -1:, None]
        signs[rows - in_time :] = chosen[rows - in_time :, :, :-1, None]
        return signs.reshape(rows, channels, length)
    # the first-order change of log P(label) per unit of +sign on the square, per frame [G, C, L]
    slope = estimate.reshape(count, channels, length, -1)[:rows].sum(axis=3)
    steady = (slope if flicker is None else slope * flicker[:rows, None]).sum(axis=2)  # [G, C]
    whole = _descent_signs(steady, drawn)[..., None]  # [G, C, 1]
    if flicker is not None:
        whole = whole * flicker[:rows, None]
    if not in_time:
        return whole
    signs = np.empty((rows, channels, length), dtype=np.int8)
    signs[: rows - in_time] = whole[: rows - in_time]
    own = slope[rows - in_time :]  # [P, C, L]
    if group > 1:  # each frame gets the sum over its run
        starts = np.arange(0, length, group)
        own = np.repeat(np.add.reduceat(own, starts, axis=2), np.diff(np.append(starts, length)), axis=2)
    signs[rows - in_time :] = _descent_signs(own, drawn[rows - in_time :, :, None])
    return signs


def _descent_signs(slope: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """``int8`` +-1 of ``slope``'s shape: the sign that lowers the loss to first order, ``-sign(slope)``,
    and ``drawn`` (broadcast to it) where the slope is zero (no answer about that entry yet)."""
    signs = np.sign(slope).astype(np.int8)
    np.negative(signs, out=signs)
    return signs if signs.all() else np.where(signs == 0, drawn, signs)


def _values(tensor: Tensor, indices: np.ndarray) -> np.ndarray:
    """``float64``: the entries of ``tensor`` (flattened) at ``indices`` (a NumPy view's gather on the
    CPU, else PyTorch's)."""
    views = numpy_views(tensor)
    if views is not None:
        return views[0].reshape(-1)[indices].astype(np.float64)
    picked = tensor.reshape(-1).index_select(0, torch.from_numpy(indices).to(tensor.device))
    return picked.to("cpu", torch.float64).numpy()


def _learn_gradient(state: _State, probs: list[float]) -> None:
    """Fold this round's answers ``probs`` (P(label) of each candidate, the moving squares first) into
    the video's gradient estimate (untargeted; the moving squares' answers).

    Candidate ``k`` differs from the current point by ``d_k`` on its square only, and its answer gives
    the change ``D_k = log P_k(label) - log P(label)``, a finite difference of the loss along ``d_k``
    (the quantity NES and Bandits, Ilyas et al. 2018 and 2019, estimate gradients from, here with the
    square as the direction). The estimate ``g`` is fitted to them: ``g += (D_k - <g, d_k>) d_k /
    |d_k|^2``, one Kaczmarz step per answer, so that the linear model ``log P(x + d) ~ log P(x) +
    <g, d>`` predicts ``D_k`` exactly afterwards. Every answer is used, also the rejected candidates';
    the estimate is kept per clip entry for the whole attack (Bandits' time prior: the gradient changes
    slowly as the point moves). (Adding ``D_k d_k / |d_k|^2`` without the prediction needed 6-19% more
    queries on three of the four validation models, 4% fewer on the fourth.)
    """
    assert state.gradient is not None and state.changes is not None
    (at, change, norms, first), state.changes = state.changes, None  # from _moving_squares
    reference = math.log(max(state.loss, 1e-30))
    for k, prob in enumerate(probs[: len(change)]):  # the moving squares' answers (any static ones follow)
        if norms[k] > 0:
            # a square's entries are distinct but for its cut pixels, which point at the estimate's
            # zero tail and add zero to it; each square is gathered after the previous one's update,
            # as squares of a round may overlap
            entries = first if k == 0 and first is not None else state.gradient[at[k]]
            surprise = math.log(max(prob, 1e-30)) - reference - float(entries @ change[k])
            entries += surprise / norms[k] * change[k]
            state.gradient[at[k]] = entries


def _write_squares(
    flat: Tensor,
    base: Tensor,
    restore: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None,
    shared: np.ndarray | None,
    clean: Tensor,
    pixel: np.ndarray,
    index: np.ndarray,
    value: np.ndarray,
    views: list[np.ndarray] | None,
) -> np.ndarray | Tensor:
    """Write into the candidate buffer ``flat`` of ``K`` clips (and a scratch tail): ``restore = (to,
    at, values)`` as ``flat[to] = base[at]`` (``= values`` where given, on the NumPy path), then the
    ``shared`` clip indices from ``base`` into every one of the ``K`` clips, then the squares,
    ``flat[index] = clamp(clean[pixel] + value, 0, 1)`` with ``pixel`` and ``index`` flat
    ``[K*C*L*side*side]`` and ``value`` ``[K, C, 1 or L, 1]`` (it broadcasts over ``[K, C, L,
    side*side]``). Through ``views``, flat NumPy views of ``(flat, base, clean)``
    (:func:`~vidattack.video.numpy_views`), where the clip's dtype has one, on the CPU (NumPy indexes a
    few thousand pixels for a fraction of PyTorch's cost), else (``None``) through PyTorch: the same
    arithmetic in the clip's dtype either way. Returns the square values written, flat (NumPy, or on the
    PyTorch path a tensor on the clip's device)."""
    shape = (*value.shape[:3], -1)  # [K, C, 1 or L, rest]
    if views is not None:
        target, source, clean_flat = views
        if restore is not None:
            to, at, values = restore
            target[to] = source[at] if values is None else values
        if shared is not None:
            target[:-1].reshape(len(value), -1)[:, shared] = source[shared]
        squares = clean_flat[pixel].reshape(shape)
        squares += value.astype(squares.dtype, copy=False)
        written = np.clip(squares, 0.0, 1.0, out=squares).reshape(-1)
        target[index] = written
        return written

    def on_device(indices: np.ndarray) -> Tensor:
        return torch.from_numpy(indices).to(clean.device)

    if restore is not None:
        flat.scatter_(0, on_device(restore[0]), base.reshape(-1).index_select(0, on_device(restore[1])))
    if shared is not None:
        at = on_device(shared)
        flat[:-1].view(len(value), -1)[:, at] = base.reshape(-1)[at]
    squares = clean.reshape(-1).index_select(0, on_device(pixel)).view(shape)
    squares = squares + torch.from_numpy(value).to(clean.device, clean.dtype)
    written = squares.clamp_(0.0, 1.0).reshape(-1)
    flat.scatter_(0, on_device(index), written)
    return written


def _check_params(
    oracle: object,
    eps: float,
    candidates: int,
    p_init: float,
    frame_block: int,
    schedule: Sequence[int],
    start_radii: Sequence[float],
    shrink: float,
    max_rounds: int | None,
    moving: float = 0.0,
    speed: float = 1.0,
    min_side: int = 1,
    patterns: Sequence[int] = (0,),
    motion_prior: float = 0.0,
    guided: float = 0.0,
    frame_signs: float = 0.0,
    frame_group: int = 1,
) -> None:
    if not isinstance(oracle, ScoreOracle):
        raise ValueError(
            f"oracle must be a vidattack.ScoreOracle (video_square is score-based), got {type(oracle).__name__}"
        )
    if not isinstance(eps, (int, float)) or not 0 < eps <= 1:
        raise ValueError(f"eps must be in (0, 1], got {eps!r}")
    if not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"candidates must be an int >= 1, got {candidates!r}")
    if not isinstance(p_init, (int, float)) or not 0 < p_init <= 1:
        raise ValueError(f"p_init must be in (0, 1], got {p_init!r}")
    if not isinstance(frame_block, int) or frame_block < 1:
        raise ValueError(f"frame_block must be an int >= 1, got {frame_block!r}")
    if any(not isinstance(q, int) or q < 0 for q in schedule):
        raise ValueError(f"schedule must hold non-negative ints, got {schedule!r}")
    if any(not isinstance(r, (int, float)) or r < 1 for r in start_radii):
        raise ValueError(f"start_radii must hold multiples of eps >= 1, got {start_radii!r}")
    if not isinstance(shrink, (int, float)) or not 0 < shrink <= 1:
        raise ValueError(f"shrink must be in (0, 1], got {shrink!r}")
    if not isinstance(moving, (int, float)) or not 0 <= moving <= 1:
        raise ValueError(f"moving must be in [0, 1], got {moving!r}")
    if not isinstance(speed, (int, float)) or speed <= 0:
        raise ValueError(f"speed must be > 0 (pixels per frame), got {speed!r}")
    if not isinstance(min_side, int) or min_side < 1:
        raise ValueError(f"min_side must be an int >= 1, got {min_side!r}")
    if not patterns or any(not isinstance(k, int) or isinstance(k, bool) or k < 0 for k in patterns):
        raise ValueError(f"patterns must be a non-empty tuple of ints >= 0 (0: constant sign), got {patterns!r}")
    if max_rounds is not None and (not isinstance(max_rounds, int) or max_rounds < 1):
        raise ValueError(f"max_rounds must be an int >= 1 or None, got {max_rounds!r}")
    if not isinstance(motion_prior, (int, float)) or isinstance(motion_prior, bool) or not 0 <= motion_prior <= 1:
        raise ValueError(f"motion_prior must be in [0, 1], got {motion_prior!r}")
    if not isinstance(guided, (int, float)) or isinstance(guided, bool) or not 0 <= guided <= 1:
        raise ValueError(f"guided must be in [0, 1], got {guided!r}")
    if not isinstance(frame_signs, (int, float)) or isinstance(frame_signs, bool) or not 0 <= frame_signs <= 1:
        raise ValueError(f"frame_signs must be in [0, 1], got {frame_signs!r}")
    if not isinstance(frame_group, int) or isinstance(frame_group, bool) or frame_group < 1:
        raise ValueError(f"frame_group must be an int >= 1, got {frame_group!r}")


def video_square(
    oracle: ScoreOracle,
    videos: Tensor,
    label: Tensor | int | Sequence[int],
    *,
    target: Tensor | int | Sequence[int] | None = None,
    eps: float = 0.05,
    candidates: int = 4,
    p_init: float = 0.2,
    frame_block: int = 16,
    moving: float = 1.0,
    speed: float = 1.0,
    min_side: int = 1,
    patterns: tuple[int, ...] = (0,),
    motion_prior: float = 0.0,
    guided: float = 1.0,
    frame_signs: float = 0.5,
    frame_group: int = 4,
    schedule: tuple[int, ...] = SQUARE_SCHEDULE,
    start_video: Tensor | Sequence[Tensor] | None = None,
    start_radii: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0),
    shrink: float = 0.5,
    max_rounds: int | None = None,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Attack ``videos [N,T,C,H,W]`` (in [0, 1]) by batched frame-block square search (L-inf ``eps``).

    All N videos are attacked together: each round sends every unfinished video's candidates in one
    oracle call, video ``i`` charged to owner ``i`` (the oracle's per-video budget applies to each;
    ``queries[i]`` is its count). A video stops at success, at its budget, or after ``max_rounds``.

    Args:
        oracle: top-1 :class:`~vidattack.threat.ScoreOracle` (more than top-1 is allowed, not used).
        videos: clean videos ``[N,T,C,H,W]`` in [0, 1] (not modified).
        label: true classes ``[N]``.
        target: target classes ``[N]`` (needs ``start_video``) or ``None`` (untargeted).
        eps: L-inf bound in [0, 1] units, ``(0, 1]`` (V-BAD's 0.05, Sec. 4.1).
        candidates: squares drawn per video per round and read in one batched oracle call, >= 1 (1 is
            Square Attack's one square per query). Default 4, chosen on the validation split
            (benchmarks/results_vsquare.md): 1 spends the fewest queries, 4 keeps most of the wall time
            in the model's forward for a single clip (0.90-0.97 over 400 rounds on the zoo's 32x32
            models with guided signs, 0.89 over 200 on the smallest, "Per-round cost") at 17% more
            queries; 8 raises the smallest model's share from 0.90 to 0.93 but costs 18-35% more
            queries than 4 ("Estimate diagnostics").
        p_init: initial share of a frame's area covered by a square, ``(0, 1]`` (Square Attack's L-inf
            ``p_init`` 0.05, Sec. 4); halved at each count of ``schedule``. Default 0.2, chosen on the
            validation split: on 32x32 frames 0.05 reaches 1-pixel squares after 1,000 queries, and
            the larger squares fooled more of the hardest clips.
        frame_block: consecutive frames a square spans (and the stripes share), >= 1; clipped to the
            clip length. Default 16 (whole clips of the usual 16 frames), chosen on the validation
            split: the zoo's motion classifiers are fooled fastest by temporally constant squares.
        moving: share of each round's squares that *move*, ``[0, 1]``: such a square drifts at a random
            velocity (at most ``speed`` pixels per frame on each axis) through the frames of its block,
            so it adds motion to the clip instead of a static pattern (motion classifiers read motion).
            Default 1.0 (every square moves), chosen on the validation split with ``p_init`` 0.2
            (benchmarks/results_vsquare.md): on lrcn-, i3d- and r2plus1d-synth it fooled more clips,
            or the same clips in fewer queries, than static squares.
        speed: the largest drift of a moving square, pixels per frame along each axis (> 0).
        min_side: smallest square side in pixels (>= 1; Square Attack's schedule goes down to 1).
        patterns: temporal sign patterns of the squares: ``0`` one sign for all the frames of its
            block, ``k > 0`` a sign that flips every ``k`` frames (random phase), so a square can
            flicker as well as move (the per-frame offsets of the Flickering attack, Pony et al. 2021,
            in a square). With more than one pattern each square draws its pattern in proportion to
            how often that pattern lowered the loss so far on this video (Laplace-smoothed rates), so
            the search learns which kind of square the model answers to. Default ``(0,)`` (no
            flicker; nothing drawn). With the default guided signs, ``(0, 1, 2, 4, 8)`` needed 25%
            fewer queries on r2plus1d-synth's validation clips (factorised temporal convolutions, whose
            gradient changes sign every few frames) and 29% and 14% more on lrcn- and c3d-synth's
            (4 seeds; benchmarks/results_vsquare.md, "Estimate diagnostics"), so it is not the default;
            worth a try on (2+1)D models.
        motion_prior: share of the squares placed where the clean clip moves, ``[0, 1]``: their
            positions are drawn in proportion to the clip's motion energy under the square (absolute
            differences of consecutive frames, summed over frames and channels), the others uniformly
            (0: all uniform, Square Attack's draw). Needs nothing but the clean clip; a clip that does
            not move gets uniform positions. Default 0: on the zoo's validation clips (4 seeds) 0.5
            changed the mean queries by -18% (lrcn-synth), -8% (c3d) and +4% (r2plus1d), and on
            i3d-synth lost its hardest clip at one seed; on the test clips of lrcn- and c3d-synth -1.5%
            and -5% (5 seeds; benchmarks/results_vsquare.md, "Motion prior"), although the white-box
            gradient of these models lies mostly where the clips move.
        guided: share of the moving squares whose sign per channel follows the running gradient estimate
            built from all the oracle's answers on this video (see the module docstring), ``[0, 1]``;
            the others get random signs, Square Attack's draw (0: all random, the earlier draw
            bit-for-bit). Untargeted only (the targeted search ignores it: not measured there).
            Default 1.0, chosen on the validation split (benchmarks/results_vsquare.md, "Guided signs";
            4 seeds, the same success rates, one sign per square, mean queries 1.0 / 0: lrcn-synth
            445 / 675, i3d-synth 594 / 949, c3d-synth 760 / 894, r2plus1d-synth 740 / 870; a share
            of 0.5 lost an i3d clip at one seed). Costs one float64 per clip entry (8 x T x C x H x W
            bytes per video) and a few NumPy gathers and scatters per round on the squares' pixels:
            on a model as small as lrcn-synth the time share in the model falls from about 0.94 to
            0.90.
        frame_signs: share of the guided squares whose sign is chosen per run of ``frame_group``
            frames from the estimate (the others keep one sign for their whole block), ``[0, 1]``:
            such a square may change sign in time, where the model answers to temporal change.
        frame_group: consecutive frames that share one sign in those squares (the sum of the
            estimate over the run decides it; the last run of a block may be shorter), >= 1.
            Defaults ``frame_signs`` 0.5 with ``frame_group`` 4, chosen on the validation split
            (4 seeds, the same success rates; benchmarks/results_vsquare.md, "Signs per run of
            frames"): mean queries against one sign per block (``frame_signs`` 0) lrcn-synth 414 /
            445, i3d-synth 411 / 594, c3d-synth 719 / 760, r2plus1d-synth 570 / 740, the only setting
            measured that is lower on all four; signs by single frames (``frame_group`` 1) helped
            r2plus1d-synth more (479) but cost c3d- and lrcn-synth 19% and 18%; runs of 2 or 8
            frames and shares 0.25 or 1.0 were worse.
        schedule: queries per video after which ``p`` is halved (Square Attack's schedule for 10,000
            queries: 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000).
        start_video: targeted only: target-class videos to start from (the attacker's data):
            ``[T,C,H,W]`` (all videos), ``[N,T,C,H,W]`` (one each) or a list of N ``[M_i,T,C,H,W]``.
            Every candidate is projected around the clean video at each radius of ``start_radii``;
            all projections and the unprojected candidates are read in one oracle call and the search
            starts from the smallest radius that keeps the target (V-BAD's Alg. 1 starts from the
            unprojected video; the batched search costs ``M * (len(start_radii) + 1)`` queries).
        start_radii: radii of the start search, multiples of ``eps`` (>= 1).
        shrink: targeted: initial radius decrease per accepted shrink, as a share of ``radius - eps``
            (``(0, 1]``); it doubles (up to this share) after a shrink that worked and halves after a
            round in which neither a shrink nor an improvement was found.
        max_rounds: optional cap on rounds per video (throughput measurements).
        generator: the only source of randomness; the same seed gives the same result.

    Returns:
        :class:`~vidattack.result.AttackResult` with ``iterations`` = rounds, ``trace`` = accepted
        points ``(queries, P(label) or P(target), success)``, and one ``extras`` dict per video:
        ``stop_reason`` (``success``, ``budget``, ``max_rounds``, ``no-start-video``), ``final_eps``
        (targeted: the radius reached), ``final_side`` (last square side).
    """
    start_time = time.perf_counter()
    _check_params(
        oracle, eps, candidates, p_init, frame_block, schedule, start_radii, shrink, max_rounds, moving, speed, min_side,
        patterns, motion_prior, guided, frame_signs, frame_group,
    )
    validate_video(videos, "videos")
    n, frames, _, height, width = videos.shape
    labels, targets = validate_label_and_target(label, target, n, oracle.num_classes(videos))
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    clean = videos.detach().clone(memory_format=torch.contiguous_format)  # flat indices address it
    eps = float(eps)
    block = min(frame_block, frames)

    states = [
        _State(i, clean[i], int(labels[i]), -1 if targets is None else int(targets[i]), clean[i].clone(), eps)
        for i in range(n)
    ]
    # First proposals: the stripes (untargeted) or the start search (targeted).
    for state in states:
        if motion_prior > 0:
            state.energy, state.motion_prior = _motion_energy(state.clean), float(motion_prior)
        if guided > 0 and targets is None:
            state.gradient, state.guided = np.zeros(state.clean.numel() + 1), float(guided)
            state.frame_signs, state.frame_group = float(frame_signs), frame_group
        if targets is None:
            state.pending = (_stripes(state.clean, eps, block, generator).unsqueeze(0), [eps])
        else:
            firsts: list[Tensor] = []
            radii: list[float] = []
            for start in start_candidates(start_video, state.owner, n, clean.shape):
                firsts.append(start)
                radii.append(float((start - state.clean).abs().max()))
                for multiple in sorted(start_radii):
                    radius = eps * float(multiple)
                    firsts.append(state.clean + (start - state.clean).clamp(-radius, radius))
                    radii.append(radius)
            state.pending = (torch.stack(firsts), radii)

    while True:
        active = [s for s in states if not s.done]
        if not active:
            break
        batch: list[Tensor] = []
        owners: list[int] = []
        sent: list[tuple[_State, Tensor, list[float]]] = []
        for state in active:
            remaining = oracle.remaining(state.owner)
            if remaining is not None and remaining <= 0:
                state.done, state.stop = True, "budget"
                continue
            if max_rounds is not None and state.rounds >= max_rounds:
                state.done, state.stop = True, "max_rounds"
                continue
            proposed, radii = state.pending or _propose(
                state, eps, candidates, p_init, schedule, block, generator, oracle, moving, speed, min_side, patterns
            )
            state.pending = None
            if remaining is not None:
                proposed, radii = proposed[:remaining], radii[:remaining]
            sent.append((state, proposed, radii))
            batch.append(proposed)
            owners.extend([state.owner] * len(radii))
        if not batch:
            continue
        try:
            # one video's candidates are already one tensor: no copy on the common single-video path
            answer = oracle.query(
                batch[0] if len(batch) == 1 else torch.cat(batch),
                owner=sent[0][0].owner if len(sent) == 1 else torch.tensor(owners),
            )
        except QueryBudgetExceeded:  # cannot happen with trimmed proposals; kept as the contract says
            for state, _, _ in sent:
                state.done, state.stop = True, "budget"
            break
        offset, all_tops, all_probs = 0, answer.labels[:, 0].tolist(), answer.probs[:, 0].tolist()
        for state, proposed, radii in sent:
            count = len(radii)
            tops, probs = all_tops[offset : offset + count], all_probs[offset : offset + count]
            offset += count
            state.rounds += 1
            _update(state, proposed, radii, tops, probs, eps, shrink, oracle)

    for state in states:
        if not state.success and state.radius > eps:
            # A targeted search that did not reach eps lies outside the ball: return its projection
            # (within the bound); its label is unknown without another query.
            state.adv = (state.clean + (state.adv - state.clean).clamp(-eps, eps)).clamp(0.0, 1.0)
            state.top = -1
    adversarial = torch.stack([s.adv for s in states])
    extras: list[dict[str, Any]] = [
        {
            "stop_reason": s.stop,
            "final_eps": s.radius,
            "final_side": s.side,
            "candidates": candidates,
            "frame_block": block,
            "p_init": p_init,
            "moving": moving,
            "speed": speed,
            "patterns": list(patterns),
            "motion_prior": motion_prior,
            "guided": guided,
            "frame_signs": frame_signs,
            "frame_group": frame_group,
        }
        for s in states
    ]
    return AttackResult(
        adversarial=adversarial,
        success=torch.tensor([s.success for s in states], dtype=torch.bool),
        queries=torch.tensor([oracle.used(s.owner) for s in states], dtype=torch.long),
        iterations=torch.tensor([s.rounds for s in states], dtype=torch.long),
        label=labels,
        target=targets,
        adv_label=torch.tensor([s.top for s in states], dtype=torch.long),
        seconds=time.perf_counter() - start_time,
        trace=[s.trace for s in states],
        extras=extras,  # type: ignore[arg-type]  # per video, as the architecture asks
        method="vsquare",
    )


def _propose(
    state: _State,
    eps: float,
    candidates: int,
    p_init: float,
    schedule: Sequence[int],
    block: int,
    generator: torch.Generator,
    oracle: ScoreOracle,
    moving: float = 0.0,
    speed: float = 1.0,
    min_side: int = 1,
    patterns: Sequence[int] = (0,),
) -> tuple[Tensor, list[float]]:
    """This round's candidates ``[K,T,C,H,W]`` and their radii: squares at the current radius, and
    (targeted) at a shrunk one."""
    _, _, height, width = state.clean.shape
    used = oracle.used(state.owner)
    state.side = _side(used, p_init, schedule, height, width, min_side)
    # rounds until the next count of the schedule (the side may change there): how far to draw ahead
    upcoming = [q for q in schedule if q >= used]
    ahead = (min(upcoming) - used) // candidates + 1 if upcoming else _PLAN_ROUNDS
    radii = [state.radius] * candidates
    if state.target >= 0 and state.radius > eps:
        # Half the squares try a smaller ball (the whole perturbation clipped to it); at least one.
        shrunk = max(state.radius - state.decay, eps)
        radii[: max(1, candidates // 2)] = [shrunk] * max(1, candidates // 2)
    # each square's temporal pattern: drawn in proportion to how often that pattern improved the loss
    # so far (Laplace-smoothed), so the search learns which kind of square the model answers to
    if len(patterns) == 1:
        chosen = [0] * candidates
    else:
        if not state.tries:
            state.tries, state.wins = [2.0] * len(patterns), [1.0] * len(patterns)
        rates = torch.tensor([w / t for w, t in zip(state.wins, state.tries, strict=True)])
        chosen = torch.multinomial(rates, candidates, replacement=True, generator=generator).tolist()
    state.drawn = chosen
    periods = [patterns[k] for k in chosen]
    # the first round(moving * candidates) squares of a round move through their frames
    movers = int(round(moving * candidates))
    if movers:
        flips = periods[:movers] if any(periods[:movers]) else None  # all constant: no flicker to apply
        moved = _moving_squares(state, radii[:movers], state.side, block, generator, speed, flips, ahead)
        if movers == candidates:
            return moved, radii
    static = [
        _square(state, r, state.side, block, generator, k)
        for r, k in zip(radii[movers:], periods[movers:], strict=True)
    ]
    return torch.cat([moved, torch.stack(static)]) if movers else torch.stack(static), radii


def _update(
    state: _State,
    proposed: Tensor,
    radii: list[float],
    tops: list[int],
    probs: list[float],
    eps: float,
    shrink: float,
    oracle: ScoreOracle,
) -> None:
    """Accept the best of the candidates ``proposed [K,T,C,H,W]`` (radii ``radii``) if it improves, and
    decide whether the video is done."""
    used = oracle.used(state.owner)
    if state.tries and state.drawn:
        for k, prob in zip(state.drawn, probs, strict=False):
            better = prob < state.loss if state.target < 0 else -prob < state.loss
            state.tries[k] += 1.0
            state.wins[k] += float(better)
        state.drawn = []
    if state.target < 0:
        for k, top in enumerate(tops):
            if top != state.label:
                state.adv, state.top, state.success, state.done, state.stop = proposed[k], top, True, True, "success"
                state.trace.append((used, 0.0, True))
                return
        if state.changes is not None:
            _learn_gradient(state, probs)  # before the point moves: the changes are from the current point
        best = min(range(len(probs)), key=probs.__getitem__)
        if state.top < 0 or probs[best] < state.loss:
            state.adv, state.loss, state.top = proposed[best], probs[best], tops[best]
            state.trace.append((used, probs[best], False))
        return
    # Targeted: among proposals that keep the target, the smallest radius, then the highest P(target).
    kept = [k for k, top in enumerate(tops) if top == state.target]
    if not kept:
        if state.top < 0:
            state.done, state.stop = True, "no-start-video"
            state.top = tops[0]
            return
        state.failures += 1
        state.decay = max(state.decay / 2, 1e-4 * eps)
        return
    best = min(kept, key=lambda k: (radii[k], -probs[k]))
    radius, loss = radii[best], -probs[best]
    first = state.top < 0
    if first or radius < state.radius - 1e-12 or loss < state.loss:
        if first:
            state.decay = shrink * max(radius - eps, 0.0)
        elif radius < state.radius - 1e-12:
            # a shrink worked: try a larger one next time
            state.decay = min(2 * state.decay, shrink * max(radius - eps, 0.0)) or state.decay
        state.adv, state.radius, state.loss, state.top = proposed[best], radius, loss, state.target
        state.trace.append((used, probs[best], radius <= eps))
    else:
        state.failures += 1
        state.decay = max(state.decay / 2, 1e-4 * eps)
    if state.radius <= eps:
        state.radius = eps
        state.success, state.done, state.stop = True, True, "success"
