"""Video RayS: a hard-label L-inf attack that searches the sign vector of a ray by spatio-temporal block
flips (after Chen & Gu, "RayS: A Ray Searching Method for Hard-label Adversarial Attack", KDD 2020).

RayS recasts the decision-based L-inf attack as a search over ray directions ``d in {-1, +1}^D``: the
distortion of direction ``d`` is its boundary radius

    r(d) = min { r > 0 : F(clip(x + r d, 0, 1)) is adversarial },

which is directly the L-inf norm of the perturbation (``||r d||_inf = r``; clipping only lowers it).
The paper's hierarchical search (its Alg. 2) cuts ``d`` into ``2^s`` blocks at stage ``s``, flips the sign
of one block at a time and keeps a flip when the new direction is adversarial at the current best
radius (one query decides a rejection), binary-searching the new radius otherwise; after a pass over
all blocks of a stage it moves to ``2^(s+1)`` blocks.

What this module changes for video and for batched oracles (our choices, not the paper's):

* **Spatio-temporal blocks.** A level's blocks are the cells of a ``t x c x h x w`` grid over the
  ``[T, C, H, W]`` clip; each level doubles one axis in the cycle time, height, width, channels (capped
  at the axis size), so the first levels flip whole groups of frames, then spatial halves, and the
  sign pattern stays coherent in time and space until the fine levels. Blocks of a pass are visited in
  a random order (``generator``), not left to right, so a budget cut does not leave the late frames
  untouched.
* **Radius descent instead of per-flip binary search.** All flips of one oracle call are checked at the
  same trial radius ``r (1 - step)`` just below the current best ``r``; an adversarial flip is accepted
  with that radius (already a verified adversarial point), so no flip costs more than one query and
  every call holds ``batch`` independent checks. ``step`` adapts: it doubles (up to 0.5) when a quarter
  of a call's checks are adversarial, and halves after a whole pass of a level without an acceptance;
  below ``min_step`` the search has converged. The paper's binary search is kept only for the initial
  directions, where it runs in lock-step over all candidates.
* **Several adversarial flips in one call.** The first in the call's order is accepted; the others were
  checked against the direction before that acceptance, so they are queued and re-checked first in the
  next call. Flips after the accepted one that were not adversarial are treated as rejected (they
  failed at the same radius against a direction that differs from the new one in one block).
* **Targeted attacks** (not in the paper, which is untargeted) start from the attacker's videos of the
  target class (``start_videos``): the rays ``(x_s - x) / ||x_s - x||_inf``, which reach ``x_s`` at
  radius ``||x_s - x||_inf``, and their signs. A real-valued ray keeps ``||d||_inf = 1`` under flips, so
  ``r`` is still the L-inf distortion; a "sharpen" candidate ``clip(2 d, -1, 1)`` is checked alongside
  the flips until ``d`` is a sign vector.

Two forms (one core, ``form``): ``"bounded"`` succeeds once an adversarial point within ``eps`` (L-inf) is
found and stops there; ``"minimising"`` spends the budget lowering the distortion (optionally stopping
at ``linf_target``) and succeeds when any adversarial point was found; ``extras[i]["linf"]`` is the
distortion reached.

**MAP phase** (minimising form, ``map_phase > 0``; ours, not in RayS). An L-inf sign ray moves every
pixel by the radius, so its MAP (mean absolute perturbation, 0-255) is about ``255 r``, where sparse
video attacks perturb a few frames and regions. The last ``map_phase`` share of the budget (or what is
left once the L-inf search has converged) makes the adversarial point sparse: candidates scale one
block of the perturbation towards the clean clip (factor 0, then 0.5 once no block can be removed at
``map_max_level``; then the same with ever finer blocks), from groups of frames down, ``batch`` candidates per
call, the adversarial one that lowers the MAP most accepted. Scaling towards the clean clip never
raises the L-inf; with ``map_linf=None`` the phase starts from the best L-inf point, so its points stay
within the L-inf reached and the sparsest one is returned. A larger ``map_linf`` first moves out along
the current ray to the farthest adversarial radius up to ``map_linf`` (one call, a geometric ladder),
from which more blocks can be removed: lower MAP at a larger L-inf (the returned clip is then still the
best L-inf point; ``extras`` report both). The bounded form has no MAP phase.

What the oracle calls batch: the initial search sends all candidate directions of a bisection step in
one call (plus the clean video in the first); every later call holds ``batch`` flip checks (fewer only
when the budget has fewer queries left). Nothing is ever sent alone, except when the budget leaves fewer
than ``batch`` queries.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from vidattack.attacks.decision_boundary import select_init_candidates
from vidattack.result import AttackResult, DistortionPoint, TracePoint, distortion_point, is_adversarial
from vidattack.threat import LabelOracle, QueryBudgetExceeded
from vidattack.video import validate_label, validate_label_and_target, validate_video

__all__ = ["video_rays", "level_counts", "level_blocks", "Form"]

Form = Literal["bounded", "minimising"]
Block = tuple[slice, slice, slice, slice]

_AXIS_INDEX = {"t": 0, "c": 1, "h": 2, "w": 3}


def _axis_cycle(axes: str) -> tuple[int, ...]:
    """Indices into ``[T, C, H, W]`` of the axes ``axes`` names (e.g. ``"thwc"``), in that order."""
    if not axes or any(a not in _AXIS_INDEX for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"axes must name distinct axes among 't', 'c', 'h', 'w', got {axes!r}")
    return tuple(_AXIS_INDEX[a] for a in axes)


# ------------------------------------------------------------------------------------------------
# Spatio-temporal block hierarchy


def level_counts(
    shape: tuple[int, int, int, int], level: int, axes: str = "thwc"
) -> tuple[int, int, int, int]:
    """Blocks per axis ``(t, c, h, w)`` of a ``[T, C, H, W]`` clip at ``level`` (level 0: one block).

    Each level doubles the next axis of the cycle time, height, width, channels that is not yet at its
    size (the channel count is capped at ``C``, so 3 channels go 1 -> 2 -> 3).
    """
    counts = [1, 1, 1, 1]
    done = 0
    while done < level:
        grown = False
        for axis in _axis_cycle(axes):
            if done >= level:
                break
            if counts[axis] < shape[axis]:
                counts[axis] = min(counts[axis] * 2, shape[axis])
                done += 1
                grown = True
        if not grown:  # every axis is at full resolution: deeper levels are the same grid
            break
    return counts[0], counts[1], counts[2], counts[3]


def _edges(size: int, count: int) -> list[int]:
    return [round(i * size / count) for i in range(count + 1)]


def level_blocks(shape: tuple[int, int, int, int], level: int, axes: str = "thwc") -> list[Block]:
    """The cells of ``level``'s grid as slices over ``[T, C, H, W]`` (they tile the clip exactly), in the
    order of the flattened grid ``[t, c, h, w]`` of :func:`level_counts`."""
    return list(_level_blocks(tuple(shape), level, axes))


@functools.lru_cache(maxsize=64)
def _level_blocks(shape: tuple[int, int, int, int], level: int, axes: str) -> tuple[Block, ...]:
    # cached: the searches list a level's blocks again at every pass over them (read-only; level_blocks copies)
    counts = level_counts(shape, level, axes)
    edges = [_edges(size, count) for size, count in zip(shape, counts, strict=True)]
    return tuple(
        (
            slice(edges[0][t], edges[0][t + 1]),
            slice(edges[1][c], edges[1][c + 1]),
            slice(edges[2][h], edges[2][h + 1]),
            slice(edges[3][w], edges[3][w + 1]),
        )
        for t in range(counts[0])
        for c in range(counts[1])
        for h in range(counts[2])
        for w in range(counts[3])
    )


def _blocks_carrying(delta: Tensor, level: int, axes: str) -> list[bool]:
    """For each block of ``level``'s grid (the order of :func:`level_blocks`): does ``delta [T,C,H,W]``
    have a non-zero entry in it? One segment sum per axis instead of one tensor test per block."""
    shape = tuple(delta.shape)
    counts = level_counts(shape, level, axes)  # type: ignore[arg-type]
    grid = (delta != 0).long()
    for axis, (size, count) in enumerate(zip(shape, counts, strict=True)):
        edges = torch.tensor(_edges(size, count), device=delta.device)
        # segment sums along ``axis``: differences of the running sum (from 0) at the block edges
        running = torch.cat([torch.zeros_like(grid.narrow(axis, 0, 1)), grid.cumsum(axis)], dim=axis)
        grid = running.index_select(axis, edges[1:]) - running.index_select(axis, edges[:-1])
    return (grid.reshape(-1) > 0).tolist()


def _max_level(shape: tuple[int, int, int, int], axes: str) -> int:
    level = 0
    while level_counts(shape, level + 1, axes) != level_counts(shape, level, axes):
        level += 1
    return level


# ------------------------------------------------------------------------------------------------
# One video's search


@dataclass
class _Candidate:
    """A direction to check: block flips of the current direction, or a whole new direction."""

    flips: tuple[Block, ...] = ()
    sharpen: bool = False


@dataclass
class _State:
    direction: Tensor  # [T,C,H,W], ||.||_inf = 1
    radius: float  # clip(x + radius * direction) is adversarial (verified by a query)
    best: Tensor  # the adversarial point with the smallest L-inf so far
    best_linf: float
    adv_label: int
    is_sign: bool = False  # every entry of the direction is +-1 (no sharpen candidate needed)
    trace: list[TracePoint] = field(default_factory=list)
    distortion: list[DistortionPoint] = field(default_factory=list)
    best_map: float = math.inf  # MAP (0-255) of the sparsest adversarial point found so far
    map_point: Tensor | None = None  # that point
    map_label: int = -1  # and its label

    def offer(self, used: int, point: Tensor, clean: Tensor, label: int, eps: float, bounded: bool) -> None:
        """Record a verified adversarial ``point`` where it improves the best L-inf or the best MAP."""
        _, linf, value = distortion_point(used, clean, point)
        sharper, sparser = linf < self.best_linf, value < self.best_map
        if sharper:
            self.best, self.best_linf, self.adv_label = point.clone(), linf, label
            self.trace.append((used, linf, (linf <= eps) if bounded else True))
        if sparser:
            self.best_map, self.map_point, self.map_label = value, point.clone(), label
        if sharper or sparser:
            self.distortion.append((used, linf, value))


class _VideoSearch:
    """Label queries for one clip: points ``clip(x + r d)`` and whether they are adversarial."""

    def __init__(self, oracle: LabelOracle, owner: int, clean: Tensor, label: int, target: int | None) -> None:
        self.oracle, self.owner, self.clean = oracle, owner, clean
        self.label = torch.tensor([label])
        self.target = None if target is None else torch.tensor([target])
        self.start = oracle.used(owner)

    def used(self) -> int:
        return self.oracle.used(self.owner) - self.start

    def room(self, wanted: int) -> int:
        """How many of ``wanted`` rows the budget still allows."""
        left = self.oracle.remaining(self.owner)
        return wanted if left is None else max(0, min(wanted, left))

    def points(self, directions: Tensor, radius: Tensor) -> Tensor:
        scale = radius.to(directions.dtype).reshape(-1, 1, 1, 1, 1)
        return (self.clean.unsqueeze(0) + scale * directions).clamp_(0.0, 1.0)

    def points_(self, directions: Tensor, radius: Tensor) -> Tensor:
        """:meth:`points` written into ``directions`` (which is overwritten and returned)."""
        scale = radius.to(directions.dtype).reshape(-1, 1, 1, 1, 1)
        return directions.mul_(scale).add_(self.clean.unsqueeze(0)).clamp_(0.0, 1.0)

    def ask(self, videos: Tensor) -> tuple[Tensor, Tensor]:
        """``(adversarial bool[P], labels long[P])`` from one oracle call of ``P`` videos."""
        labels = self.oracle.query(videos, owner=self.owner).reshape(-1).cpu()
        count = labels.numel()
        target = None if self.target is None else self.target.expand(count)
        return is_adversarial(labels, self.label.expand(count), target), labels


def _linf(clean: Tensor, point: Tensor) -> float:
    return float((point - clean).abs().max())


def _initial_candidates(
    clean: Tensor,
    starts: Tensor | None,
    count: int,
    level: int,
    axes: str,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Directions ``[K,T,C,H,W]`` (``||.||_inf = 1``) and the radius ``[K]`` at which each is checked first.

    Sign rays are checked at radius 1 (the farthest point of the ray inside [0, 1]^D); rays towards a
    start video at the radius that reaches it.
    """
    shape = tuple(clean.shape)
    directions: list[Tensor] = []
    radii: list[float] = []
    if starts is not None:
        for start in starts:
            delta = start - clean
            norm = float(delta.abs().max())
            if norm <= 0:
                continue
            directions.append(delta / norm)
            radii.append(norm)
            directions.append(torch.where(delta >= 0, 1.0, -1.0).to(clean.dtype))
            radii.append(1.0)
    if starts is None or not directions:
        # Untargeted: RayS's all-ones start, its opposite, and random block-constant sign rays.
        directions.append(torch.ones_like(clean))
        directions.append(-torch.ones_like(clean))
        blocks = _level_blocks(shape, level, axes)  # type: ignore[arg-type]
        while len(directions) < count:
            signs = torch.randint(0, 2, (len(blocks),), generator=generator) * 2 - 1
            direction = torch.empty_like(clean)
            for sign, block in zip(signs.tolist(), blocks, strict=True):
                direction[block] = float(sign)
            directions.append(direction)
        radii.extend([1.0] * (len(directions) - len(radii)))
    return torch.stack(directions), torch.tensor(radii, dtype=torch.float64)


def _initial_search(
    search: _VideoSearch, directions: Tensor, radii: Tensor, tolerance: float
) -> tuple[Tensor, float, int, int] | None:
    """Lock-step binary search of the boundary radius of every candidate (RayS's Alg. 1 per row).

    The first call also holds the clean video (to detect a clip that is already adversarial). Rows stop
    when ``hi - lo <= tolerance * hi`` or when ``lo`` cannot beat the best ``hi`` any more. Returns
    ``(direction, radius, label, clean_label)`` of the smallest radius found, ``None`` when no candidate
    is adversarial (``clean_label`` is then raised through :class:`_CleanIsAdversarial` if needed).
    """
    count = directions.shape[0]
    rows = search.room(count + 1)
    if rows < count + 1:
        raise QueryBudgetExceeded(search.owner, search.used(), count + 1, -1)
    first = torch.cat([search.clean.unsqueeze(0), search.points(directions, radii)])
    adv, labels = search.ask(first)
    clean_label = int(labels[0])
    if bool(adv[0]):
        raise _CleanIsAdversarial(clean_label)
    adv, labels = adv[1:], labels[1:]
    hi = torch.where(adv, radii, torch.full_like(radii, math.inf))
    lo = torch.zeros_like(radii)
    hi_label = torch.where(adv, labels, torch.full_like(labels, -1))
    while True:
        best = float(hi.min())
        if not math.isfinite(best):
            return None
        active = torch.isfinite(hi) & (hi - lo > tolerance * hi) & (lo < best)
        index = active.nonzero().flatten()
        if index.numel() == 0:
            pick = int(hi.argmin())
            return directions[pick], float(hi[pick]), int(hi_label[pick]), clean_label
        index = index[: search.room(index.numel())]
        if index.numel() == 0:
            raise QueryBudgetExceeded(search.owner, search.used(), 1, -1)
        mid = (lo[index] + hi[index]) / 2
        got, got_labels = search.ask(search.points(directions[index], mid))
        hi[index] = torch.where(got, mid, hi[index])
        hi_label[index] = torch.where(got, got_labels, hi_label[index])
        lo[index] = torch.where(got, lo[index], mid)


class _CleanIsAdversarial(Exception):
    def __init__(self, label: int) -> None:
        super().__init__(label)
        self.label = label


def _is_sign(direction: Tensor) -> bool:
    return bool((direction.abs() == 1).all())


def _apply(direction: Tensor, candidate: _Candidate) -> Tensor:
    out = direction.clone()
    if candidate.sharpen:
        out = (2 * out).clamp_(-1.0, 1.0)
    for block in candidate.flips:
        out[block] = -out[block]
    return out


def _block_search(
    search: _VideoSearch,
    state: _State,
    *,
    eps: float,
    bounded: bool,
    stop_linf: float | None,
    batch: int,
    step: float,
    min_step: float,
    max_level: int,
    probes: int,
    axes: str,
    generator: torch.Generator | None,
    query_limit: int | None = None,
    stay_rate: float = 0.0,
) -> str:
    """Lower ``state.radius`` by block flips until a stopping rule holds; returns the stop reason.

    ``query_limit``: stop (reason ``"phase end"``) once the video has used this many queries (the rest of
    the budget belongs to the MAP phase).
    """
    shape = tuple(search.clean.shape)
    deepest = min(max_level, _max_level(shape, axes))  # type: ignore[arg-type]
    level = 0
    order: list[Block] = []
    cursor = 0
    pending: list[_Candidate] = []
    accepted_in_pass = 0
    probe_next = False
    while True:
        if bounded and state.best_linf <= eps:
            return "reached"
        if stop_linf is not None and state.best_linf <= stop_linf:
            return "reached"
        rows = search.room(batch)
        if query_limit is not None:
            rows = min(rows, max(0, query_limit - search.used()))
            if rows == 0:
                return "phase end"
        if rows == 0:
            return "budget"
        trial = state.radius * (1 - step)
        if bounded:
            trial = max(trial, eps)
        # After the direction changed, probe it further down the ray in the same call (a flip that
        # improves the radius often improves it by more than one step).
        ladder = [state.radius * (1 - step * 2**k) for k in range(1, probes + 1)] if probe_next else []
        ladder = [max(value, eps) if bounded else value for value in ladder if value > 0]
        ladder = sorted({value for value in ladder if value < trial}, reverse=True)[: max(rows - 1, 0)]
        candidates: list[_Candidate] = []
        if not state.is_sign:
            candidates.append(_Candidate(sharpen=True))
        while pending and len(candidates) + len(ladder) < rows:
            candidates.append(pending.pop(0))
        while len(candidates) + len(ladder) < rows:
            if cursor >= len(order):
                # A pass over a level ended; passes over the first few tiny levels say little about the
                # step, so only passes of at least one call's worth of blocks shrink it.
                if order and len(order) >= batch and accepted_in_pass == 0:
                    if level == deepest and step <= min_step:
                        return "converged"
                    step = max(step / 2, min_step)
                    trial = state.radius * (1 - step)
                    if bounded:
                        trial = max(trial, eps)
                # A level whose pass still accepted at least ``stay_rate`` of its blocks is passed over
                # again: its coarse flips are still progress, and cheaper per radius gained.
                if order and not (stay_rate > 0 and accepted_in_pass >= stay_rate * len(order)):
                    level = min(level + 1, deepest)
                blocks = _level_blocks(shape, level, axes)  # type: ignore[arg-type]
                permutation = torch.randperm(len(blocks), generator=generator).tolist()
                order = [blocks[i] for i in permutation]
                cursor = 0
                accepted_in_pass = 0
            candidates.append(_Candidate(flips=(order[cursor],)))
            cursor += 1
        # One tensor holds every row; the flips and then the points are written into it in place
        # (this loop runs once per oracle call, so its copies count against the throughput).
        points = state.direction.unsqueeze(0).repeat(len(ladder) + len(candidates), 1, 1, 1, 1)
        for row, candidate in enumerate(candidates, start=len(ladder)):
            if candidate.sharpen:
                points[row].mul_(2).clamp_(-1.0, 1.0)
            for block in candidate.flips:
                points[row][block].neg_()
        radii = torch.tensor(ladder + [trial] * len(candidates), dtype=points.dtype)
        points = search.points_(points, radii)
        adv, labels = search.ask(points)
        probe_next = False
        hits = adv[len(ladder):].nonzero().flatten().tolist()
        # The ladder is sorted downwards. Only rungs adversarial all the way down from the trial radius
        # count: a ray can re-enter the adversarial region in a small pocket below the boundary, and a
        # radius there has no adversarial neighbours for the flips to find.
        probe_hits = []
        for rung in range(len(ladder)):
            if not bool(adv[rung]):
                break
            probe_hits.append(rung)
        chosen: int | None = None
        if probe_hits:
            chosen = probe_hits[-1]
            state.radius = ladder[chosen]
            probe_next = True
        elif hits:
            chosen = len(ladder) + hits[0]
            state.direction = _apply(state.direction, candidates[hits[0]])
            state.is_sign = state.is_sign or candidates[hits[0]].sharpen and _is_sign(state.direction)
            state.radius = trial
            hits = hits[1:]
            probe_next = True
        if chosen is None:
            continue
        accepted_in_pass += 1
        state.offer(search.used(), points[chosen], search.clean, int(labels[chosen]), eps, bounded)
        # The other hits were checked against the direction (or radius) before this acceptance:
        # re-check them first.
        pending = [candidates[i] for i in hits if not candidates[i].sharpen] + pending


# ------------------------------------------------------------------------------------------------
# MAP phase (minimising form): make the adversarial point sparse


def _map_search(
    search: _VideoSearch,
    state: _State,
    *,
    cap: float,
    eps: float,
    batch: int,
    levels: tuple[int, int],
    axes: str,
    generator: torch.Generator | None,
) -> str:
    """Lower the MAP of the adversarial point by scaling blocks of its perturbation towards the clean clip.

    The base is the sparsest adversarial point so far; when ``cap`` exceeds its L-inf, the first call also
    checks the current ray at radius ``cap`` (a point further inside the adversarial region, so that
    whole blocks can be removed from it), and the base moves there if it is adversarial. Every
    candidate multiplies one block of the base perturbation by a factor (0: reset the block to the clean
    clip; then 0.5 once zeroing no longer succeeds at level ``levels[1]``; then the same at ever finer
    levels, down to single pixels), which never raises the L-inf
    nor leaves [0, 1] (the points are convex combinations of the clean clip and an adversarial point).
    Calls hold ``batch`` candidates; of the adversarial ones, the largest MAP reduction is accepted
    and the others are re-checked against the new base first (as in the flip search). Blocks go from
    ``levels[0]`` (coarse: groups of frames) to ``levels[1]``. Returns the stop reason.
    """
    clean = search.clean
    shape = tuple(clean.shape)
    finest = _max_level(shape, axes)  # type: ignore[arg-type]
    deepest = min(levels[1], finest)
    level = min(levels[0], deepest)
    base = state.map_point if state.map_point is not None else state.best
    delta = base - clean
    reached = _linf(clean, base)
    if cap > reached * (1 + 1e-6):
        # One call checks the current ray at radii from just above the reached one up to ``cap``
        # (geometric); the base moves to the farthest adversarial one: blocks removed from a point
        # deep inside the adversarial region are more often removable.
        rungs = search.room(min(batch, 8))
        if rungs == 0:
            return "budget"
        radii = torch.tensor([reached * (cap / reached) ** ((k + 1) / rungs) for k in range(rungs)])
        lifted = search.points(state.direction.unsqueeze(0).expand(rungs, -1, -1, -1, -1), radii)
        adv, labels = search.ask(lifted)
        good = adv.nonzero().flatten().tolist()
        if good:
            delta = lifted[good[-1]] - clean
            state.offer(search.used(), lifted[good[-1]], clean, int(labels[good[-1]]), eps, False)
    factors = (0.0, 0.5)
    stage = 0
    order: list[Block] = []
    cursor = 0
    accepted_in_pass = 0
    pending: list[Block] = []
    while True:
        rows = search.room(batch)
        if rows == 0:
            return "budget"
        blocks: list[Block] = []
        while pending and len(blocks) < rows:
            blocks.append(pending.pop(0))
        while len(blocks) < rows:
            if cursor >= len(order):
                if order and accepted_in_pass == 0 and level == deepest:
                    if stage + 1 < len(factors):
                        stage += 1
                    elif deepest < finest:
                        # nothing more comes off at this block size: go on with finer blocks
                        deepest = level = deepest + 1
                        stage = 0
                    else:
                        if not blocks:
                            return "converged"
                        break
                elif order:
                    level = min(level + 1, deepest)
                listed = _level_blocks(shape, level, axes)  # type: ignore[arg-type]
                permutation = torch.randperm(len(listed), generator=generator).tolist()
                # only blocks that still carry perturbation can lower the MAP
                carrying = _blocks_carrying(delta, level, axes)
                order = [listed[i] for i in permutation if carrying[i]]
                cursor = 0
                accepted_in_pass = 0
                if not order:
                    if level == deepest:
                        return "converged"
                    continue
            blocks.append(order[cursor])
            cursor += 1
        factor = factors[stage]
        points = delta.unsqueeze(0).repeat(len(blocks), 1, 1, 1, 1)
        for row, block in enumerate(blocks):
            points[row][block].mul_(factor)
        points.add_(clean.unsqueeze(0))
        adv, labels = search.ask(points)
        hits = adv.nonzero().flatten().tolist()
        if not hits:
            continue
        # the lowest MAP = the most L1 taken off: (1 - factor) |delta| summed over the block
        removed = [float(delta[blocks[row]].abs().sum()) for row in hits]
        pick = hits[max(range(len(hits)), key=lambda k: removed[k])]
        delta = points[pick] - clean
        accepted_in_pass += 1
        state.offer(search.used(), points[pick], clean, int(labels[pick]), eps, False)
        pending = [blocks[row] for row in hits if row != pick] + pending


# ------------------------------------------------------------------------------------------------
# The attack


def _check_arguments(
    oracle: Any,
    videos: Tensor,
    eps: float,
    form: str,
    linf_target: float | None,
    batch: int,
    step: float,
    min_step: float,
    init_directions: int,
    init_level: int,
    max_level: int,
    init_tolerance: float,
    axes: str,
) -> None:
    if not isinstance(oracle, LabelOracle):
        raise ValueError(f"oracle must be a vidattack LabelOracle (top-1 labels), got {type(oracle).__name__}")
    validate_video(videos, "videos")
    if not (isinstance(eps, (int, float)) and 0 < eps <= 1):
        raise ValueError(f"eps must be in (0, 1] (L-inf bound on the [0, 1] scale), got {eps!r}")
    _axis_cycle(axes)
    if form not in ("bounded", "minimising"):
        raise ValueError(f"form must be 'bounded' or 'minimising', got {form!r}")
    if linf_target is not None and not (0 < linf_target <= 1):
        raise ValueError(f"linf_target must be None or in (0, 1], got {linf_target!r}")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if not (0 < step < 1):
        raise ValueError(f"step must be in (0, 1), got {step!r}")
    if not (0 < min_step <= step):
        raise ValueError(f"min_step must be in (0, step], got {min_step!r}")
    if not isinstance(init_directions, int) or init_directions < 1:
        raise ValueError(f"init_directions must be a positive int, got {init_directions!r}")
    if not isinstance(init_level, int) or init_level < 0:
        raise ValueError(f"init_level must be a non-negative int, got {init_level!r}")
    if not isinstance(max_level, int) or max_level < 0:
        raise ValueError(f"max_level must be a non-negative int, got {max_level!r}")
    if not (0 < init_tolerance < 1):
        raise ValueError(f"init_tolerance must be in (0, 1), got {init_tolerance!r}")


def _check_starts(start_videos: Tensor | None, start_labels: Tensor | None, videos: Tensor) -> Tensor | None:
    if start_videos is None:
        if start_labels is not None:
            raise ValueError("start_labels given without start_videos")
        return None
    validate_video(start_videos, "start_videos")
    if start_videos.shape[1:] != videos.shape[1:]:
        raise ValueError(
            f"start_videos must have the videos' clip shape {tuple(videos.shape[1:])}, "
            f"got {tuple(start_videos.shape[1:])}"
        )
    if start_labels is None:
        return None
    return validate_label(start_labels, start_videos.shape[0], name="start_labels")


def video_rays(
    oracle: LabelOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    start_videos: Tensor | None = None,
    start_labels: Tensor | None = None,
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float = 0.05,
    form: Form = "bounded",
    linf_target: float | None = None,
    batch: int = 16,
    step: float = 0.02,
    min_step: float = 0.001,
    init_directions: int = 24,
    init_level: int = 3,
    max_level: int = 10,
    init_tolerance: float = 0.02,
    probes: int = 3,
    axes: str = "thwc",
    init_axes: str = "",
    stay_rate: float = 0.0,
    map_phase: float = 0.0,
    map_linf: float | None = None,
    map_max_level: int = 12,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Video RayS on ``videos [N,T,C,H,W]`` in [0, 1] through top-1 labels only (see the module docstring).

    Args:
        oracle: a :class:`LabelOracle`; video ``i`` is charged to owner ``i`` (per-video budget).
        label: true classes ``[N]`` (or one int).
        start_videos: the attacker's own clips ``[M,T,C,H,W]``; targeted attacks need clips of the
            target class (their rays start the search), untargeted ones may add clips of other classes
            to the random sign rays.
        start_labels: classes of ``start_videos`` ``[M]``; ``None``: every start clip is used.
        target: target classes ``[N]`` (targeted) or ``None`` (untargeted).
        eps: L-inf bound on the [0, 1] scale (issue 18's 0.05). ``form="bounded"``: success means an
            adversarial point within ``eps``, and the search stops there. ``form="minimising"``: only
            marks the trace's success flag; the search goes on.
        form: ``"bounded"`` or ``"minimising"`` (see the module docstring).
        linf_target: minimising form: stop once the distortion is <= this (``None``: spend the budget
            or run to convergence).
        batch: flip checks per oracle call (>= 1; 16 saturates the zoo models' batched CPU throughput
            and was chosen on the validation split, see benchmarks/results_vrays.md).
        step: initial relative radius step: flips are checked at ``r (1 - step)`` (0.02; 0.1 stalled
            on the validation split: single flips rarely improve the radius by 10%).
        min_step: the search has converged when ``step`` halves below this.
        init_directions: random sign rays (untargeted) or start clips (each gives 2 rays) tried first
            (24: median L-inf 0.0470 at 5,000 queries on the c3d-synth validation clips, against 0.0481
            with 8 and 0.0470 with 48; benchmarks/results_vrays.md).
        init_level: block level of the random initial sign rays (3: 2 frame halves x 2 x 2 spatial).
        max_level: deepest block level; once there, its blocks are visited again in new random orders
            (10: on a 16 x 3 x 32 x 32 clip, 8 x 3 x 8 x 4 = 768 blocks of 2 frames x 1 channel x 4 x 8
            pixels; chosen on the validation split over 12 and 16, see benchmarks/results_vrays.md).
        probes: after an acceptance, the next call also checks the current ray at ``probes`` radii
            ``r (1 - 2^k step)``, ``k = 1..probes`` (a flip often improves the radius by more than
            one step).
        axes: the order in which levels split the clip's axes, any of ``t``, ``h``, ``w``, ``c``
            (an axis left out is never split: its sign stays shared); ``"thwc"`` (validation).
        init_tolerance: relative width at which the initial binary search stops (RayS bisects to an
            absolute 1e-3; relative suits radii from 1 down to 1e-3).
        init_axes: the axes the random initial rays' blocks split (``""``, default: ``axes``); ``"hwc"``
            gives rays whose sign pattern is the same in every frame: on the c3d-synth validation clips
            one clip better than the default at 5,000 queries, but no start at all within 300 queries
            on the toy model, whose classes are motions (a time-constant pattern cannot fake a motion),
            so it is not the default (benchmarks/results_vrays.md).
        stay_rate: a level whose pass accepted at least this share of its blocks is passed over again
            before the search moves to finer blocks (0: always move on, as RayS).
        map_phase: minimising form: the share of each video's budget (the last part) spent on the MAP
            phase (module docstring); 0 (default): none, the whole budget lowers the L-inf. With no
            budget, the MAP phase runs once the L-inf search has converged.
        map_linf: L-inf allowed to the MAP phase's points: ``None`` (default): the L-inf reached by the
            L-inf search (the result is then at most as far in L-inf and sparser); a larger value
            trades L-inf for MAP (benchmarks/results_vrays.md).
        map_max_level: the MAP phase refines its blocks level by level down to this one and passes over
            it until no block comes off any more, then goes on one level finer at a time (12: 8 x 3 x
            16 x 8 blocks of 2 frames x 1 channel x 2 x 4 pixels on a 16 x 3 x 32 x 32 clip).
        generator: randomness (random initial rays, block orders).

    Returns:
        :class:`AttackResult`: ``queries`` are the oracle's counts; ``iterations`` the accepted flips;
        ``trace[i]`` holds ``(queries, best L-inf so far, success)`` after each improvement (the
        distortion never increases); ``extras[i]`` has ``linf`` (``inf`` when nothing adversarial was
        found), ``distortion_trace`` (``(queries, L-inf, MAP)`` of each adversarial point that improved
        the best L-inf or the best MAP, in every phase; :data:`vidattack.result.DistortionPoint`),
        ``map`` (0-255, the smallest MAP among the adversarial points found, ``inf`` when none),
        ``init_queries``; with a MAP phase also ``map_start`` (queries used
        when it began), ``linf_before_map`` / ``map_before_map`` (reached before it) and ``map_linf``
        (L-inf of the sparsest point); ``stop_reason`` (``reached``, ``budget``, ``converged``, ``no adversarial start``, ``clean
        already adversarial``) and ``form``. Bounded failures return the clean clip.
    """
    began = time.perf_counter()
    _check_arguments(
        oracle, videos, eps, form, linf_target, batch, step, min_step, init_directions, init_level,
        max_level, init_tolerance, axes,
    )
    if init_axes:
        _axis_cycle(init_axes)
    if not (isinstance(stay_rate, (int, float)) and 0 <= stay_rate <= 1):
        raise ValueError(f"stay_rate must be in [0, 1], got {stay_rate!r}")
    if not (isinstance(map_phase, (int, float)) and 0 <= map_phase <= 1):
        raise ValueError(f"map_phase must be in [0, 1] (share of the budget), got {map_phase!r}")
    if map_linf is not None and not (0 < map_linf <= 1):
        raise ValueError(f"map_linf must be None or in (0, 1], got {map_linf!r}")
    if not isinstance(map_max_level, int) or map_max_level < 1:
        raise ValueError(f"map_max_level must be a positive int, got {map_max_level!r}")
    n = videos.shape[0]
    labels, targets = validate_label_and_target(label, target, n, oracle.num_classes(videos))
    labels, targets = labels.cpu(), None if targets is None else targets.cpu()
    start_labels = _check_starts(start_videos, start_labels, videos)
    if targets is not None and start_videos is None:
        raise ValueError("start_videos (clips of the target class, from the attacker's data) are required for a targeted attack")
    bounded = form == "bounded"
    clean_all = videos.detach().clone()
    adversarial = clean_all.clone()
    success = torch.zeros(n, dtype=torch.bool)
    iterations = torch.zeros(n, dtype=torch.long)
    adv_label = labels.clone()
    traces: list[list[TracePoint]] = []
    extras: list[dict[str, Any]] = []
    queries = torch.zeros(n, dtype=torch.long)
    for i in range(n):
        clean = clean_all[i]
        y = int(labels[i])
        t = None if targets is None else int(targets[i])
        search = _VideoSearch(oracle, i, clean, y, t)
        info: dict[str, Any] = {"form": form, "linf": math.inf, "distortion_trace": [], "map": math.inf}
        # the L-inf search's share of this video's budget; the MAP phase gets the rest
        left = oracle.remaining(i)
        sparse = not bounded and map_phase > 0
        phase_end = None if left is None or not sparse else int(math.floor((1 - map_phase) * left))
        state: _State | None = None
        reason = "budget"
        try:
            starts = select_init_candidates(start_videos, start_labels, y, t, init_directions, generator)
            if t is not None and starts is None:
                reason = "no start video of the target class"
            else:
                directions, radii = _initial_candidates(
                    clean, starts, init_directions, init_level, init_axes or axes, generator
                )
                found = _initial_search(search, directions, radii, init_tolerance)
                info["init_queries"] = search.used()
                if found is None:
                    reason = "no adversarial start"
                else:
                    direction, radius, got_label, _ = found
                    point = search.points(direction.unsqueeze(0), torch.tensor([radius]))[0]
                    state = _State(direction.clone(), radius, point, math.inf, got_label, _is_sign(direction))
                    state.offer(search.used(), point, clean, got_label, eps, bounded)
                    reason = _block_search(
                        search, state, eps=eps, bounded=bounded, stop_linf=linf_target, batch=batch,
                        step=step, min_step=min_step, max_level=max_level, probes=probes, axes=axes,
                        generator=generator, query_limit=phase_end, stay_rate=stay_rate,
                    )
                    if sparse and reason in ("phase end", "converged", "reached"):
                        info["map_start"] = search.used()
                        info["linf_before_map"] = state.best_linf
                        info["map_before_map"] = state.best_map
                        cap = state.best_linf if map_linf is None else max(map_linf, state.best_linf)
                        reason = _map_search(
                            search, state, cap=cap, eps=eps, batch=batch, levels=(1, map_max_level),
                            axes=axes, generator=generator,
                        )
        except QueryBudgetExceeded:
            reason = "budget"
        except _CleanIsAdversarial as clean_adv:
            reason = "clean already adversarial"
            adv_label[i] = clean_adv.label
            success[i] = True
            info["linf"] = 0.0
            traces.append([(search.used(), 0.0, True)])
        info.setdefault("init_queries", search.used())
        queries[i] = search.used()
        if reason != "clean already adversarial":
            trace = state.trace if state is not None else []
            traces.append(trace)
            if state is not None:
                info["linf"] = state.best_linf
                info["distortion_trace"] = state.distortion
                info["map"] = state.best_map
                iterations[i] = len(state.trace) - 1
                won = state.best_linf <= eps if bounded else True
                if won:
                    success[i] = True
                    adversarial[i] = state.best
                    adv_label[i] = state.adv_label
                    sparsest = state.map_point
                    if not bounded and sparsest is not None:
                        info["map_linf"] = _linf(clean, sparsest)
                        # the sparsest point is returned when it is no farther in L-inf than the best one
                        if info["map_linf"] <= state.best_linf + 1e-9:
                            adversarial[i] = sparsest
                            adv_label[i] = state.map_label
        if not bool(success[i]):
            info["stop_reason"] = reason
        elif reason not in ("reached", "clean already adversarial"):
            info["end_reason"] = reason
        extras.append(info)
    return AttackResult(
        adversarial=adversarial,
        success=success,
        queries=queries,
        iterations=iterations,
        label=labels,
        target=targets,
        adv_label=adv_label,
        seconds=time.perf_counter() - began,
        trace=traces,
        extras=extras,  # type: ignore[arg-type]
        method="vrays" if bounded else "vrays-min",
    )
