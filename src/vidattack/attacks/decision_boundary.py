"""The decision-boundary loop shared by Opt-attack and the Heuristic attack (Cheng et al., ICLR 2019;
Wei et al., AAAI 2020): label queries along rays ``x + lam * theta``, the boundary distance ``g(theta)``
(fine-grained then binary search), initial directions from candidate videos, zeroth-order descent on
``theta`` with a backtracking line search, and the MAP stopping rule. See :mod:`opt_attack` for the
algorithm's description; :func:`run_direction_attack` is the loop both attacks run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from vidattack.estimators import rgf_estimate
from vidattack.result import (
    AttackResult,
    DistortionPoint,
    TracePoint,
    distortion_point,
    is_adversarial,
    video_extras,
)
from vidattack.threat import LabelOracle, QueryBudgetExceeded, ScoreOracle
from vidattack.video import validate_label_and_target, validate_video

__all__ = [
    "run_direction_attack",
    "DEFAULT_MAP_TARGET_TARGETED",
    "RaySearch",
    "local_distance",
    "bracket_distance",
    "map_255_along",
    "lambda_for_map",
    "DirectionState",
    "optimize_direction",
    "select_init_candidates",
    "DEFAULT_MAP_TARGET",
]

#: Default stopping MAP (0-255 scale). Neither paper states a MAP target (they run Opt-attack to
#: convergence); 3.0 is the Heuristic paper's untargeted bound omega and the size of the MAPs of its
#: Table 6 (1.5-4.3 untargeted). The targeted default is :data:`DEFAULT_MAP_TARGET_TARGETED`.
DEFAULT_MAP_TARGET = 3.0
#: Targeted default stopping MAP: the targeted MAPs of Table 6 are 3.9-13.5.
DEFAULT_MAP_TARGET_TARGETED = 10.0

LabelFn = Callable[[Tensor], Tensor]


# ------------------------------------------------------------------------------------------------
# Label queries along rays x + lam * theta


class RaySearch:
    """Ask the label oracle whether points ``clip(x + lam * theta, 0, 1)`` are adversarial.

    Args:
        labels_of: maps a batch of videos ``[P,T,C,H,W]`` to top-1 labels ``long[P]`` (one oracle call).
        clean: the clean video ``[T,C,H,W]`` in [0, 1].
        label: its true class; ``target``: the target class or ``None`` (untargeted).

    ``thetas`` are ``[P,T,C,H,W]`` and assumed to have unit L2 norm; each call is one batched query.
    """

    def __init__(self, labels_of: LabelFn, clean: Tensor, label: int, target: int | None) -> None:
        self.labels_of = labels_of
        self.clean = clean
        self.label = torch.tensor([label])
        self.target = None if target is None else torch.tensor([target])

    def points(self, thetas: Tensor, lam: Tensor) -> Tensor:
        """``clip(x + lam * theta, 0, 1)`` for ``thetas [P,...]`` and distances ``lam [P]``."""
        scale = lam.to(device=thetas.device, dtype=thetas.dtype).reshape(-1, *([1] * (thetas.dim() - 1)))
        return (self.clean.unsqueeze(0) + scale * thetas).clamp_(0.0, 1.0)

    def adversarial(self, videos: Tensor) -> tuple[Tensor, Tensor]:
        """``(adversarial bool[P], labels long[P])`` of ``videos`` (one oracle call)."""
        labels = self.labels_of(videos).reshape(-1).cpu()
        count = labels.numel()
        target = None if self.target is None else self.target.expand(count)
        return is_adversarial(labels, self.label.expand(count), target), labels

    def adversarial_unchecked(self, videos: Tensor, labels_of: LabelFn) -> tuple[Tensor, Tensor]:
        """Like :meth:`adversarial` but through another label function (e.g. without the reserve)."""
        labels = labels_of(videos).reshape(-1).cpu()
        count = labels.numel()
        target = None if self.target is None else self.target.expand(count)
        return is_adversarial(labels, self.label.expand(count), target), labels

    def ask(self, thetas: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
        """Adversarial flags and labels at ``clip(x + lam * theta)`` (one oracle call of ``P`` videos)."""
        return self.adversarial(self.points(thetas, lam))


def _bisect(
    search: RaySearch,
    thetas: Tensor,
    lo: Tensor,
    hi: Tensor,
    hi_label: Tensor,
    *,
    tolerance: float,
    rtol: float,
    prune: bool = False,
) -> tuple[Tensor, Tensor]:
    """Binary search, in lock-step, between non-adversarial ``lo`` and adversarial ``hi`` (float64 [P]).

    Rows stop when ``hi - lo <= max(tolerance, rtol * hi)``; rows with ``hi = inf`` are left alone. With
    ``prune`` a row also stops once ``lo`` is at least the smallest ``hi`` of all rows: it cannot give
    the smallest distance any more (Cheng et al. use the current best distance as the upper bound of
    the next candidate's search in the same way).
    """
    lo, hi, hi_label = lo.clone(), hi.clone(), hi_label.clone()
    while True:
        width = hi - lo
        active = torch.isfinite(hi) & (width > torch.clamp(rtol * hi, min=tolerance))
        if prune:
            active &= lo < hi.min()
        rows = active.nonzero().flatten()
        if rows.numel() == 0:
            return hi, hi_label
        mid = (lo[rows] + hi[rows]) / 2
        adv, labels = search.ask(thetas[rows], mid)
        hi[rows] = torch.where(adv, mid, hi[rows])
        hi_label[rows] = torch.where(adv, labels, hi_label[rows])
        lo[rows] = torch.where(adv, lo[rows], mid)


def local_distance(
    search: RaySearch,
    thetas: Tensor,
    start: Tensor,
    *,
    upper: bool = False,
    ratio: float = 0.01,
    tolerance: float = 1e-5,
    max_steps: int = 200,
) -> tuple[Tensor, Tensor]:
    """Cheng et al.'s Alg. 1 ("compute g(theta) locally"), for ``P`` directions in lock-step.

    From ``start [P]``: if ``x + start * theta`` is not adversarial, step up by ``x (1 + ratio)`` until
    it is; otherwise step down by ``x (1 - ratio)`` until it is not; then binary search the bracket
    down to ``tolerance``. With ``upper`` (the line-search shortcut), ``start`` is the current best
    distance: a direction that is not adversarial there cannot improve on it and gets ``inf`` after a
    single query.

    Args:
        thetas: unit-norm directions ``[P,T,C,H,W]``.
        start: starting distances ``[P]`` (float64), e.g. the current ``g(theta)``.
        ratio: the fine-grained search ratio alpha (Cheng et al.: 0.01).
        tolerance: the binary search's stopping width.
        max_steps: fine-search steps before a row gives up (``inf``).

    Returns:
        ``(g [P] float64, labels long[P])``: the adversarial end of the final bracket (``inf`` when
        none was found) and the label the oracle gave there (``-1`` for ``inf``).
    """
    count = thetas.shape[0]
    start = start.to(torch.float64).clone()
    adv, labels = search.ask(thetas, start)
    hi = torch.full((count,), math.inf, dtype=torch.float64)
    lo = torch.zeros(count, dtype=torch.float64)
    hi_label = torch.full((count,), -1, dtype=torch.long)
    hi[adv] = start[adv]
    hi_label[adv] = labels[adv]
    if upper:
        lo[~adv] = math.inf
    else:
        # Not adversarial at start: walk outwards until the decision flips.
        lo[~adv] = start[~adv]
        climbing = (~adv).clone()
        for _ in range(max_steps):
            rows = climbing.nonzero().flatten()
            if rows.numel() == 0:
                break
            trial = lo[rows] * (1 + ratio)
            got, got_labels = search.ask(thetas[rows], trial)
            hi[rows] = torch.where(got, trial, hi[rows])
            hi_label[rows] = torch.where(got, got_labels, hi_label[rows])
            lo[rows] = torch.where(got, lo[rows], trial)
            climbing[rows] = ~got
    # Adversarial at start: walk inwards until it is not.
    descending = adv.clone()
    lo[adv] = start[adv]
    for _ in range(max_steps):
        rows = descending.nonzero().flatten()
        if rows.numel() == 0:
            break
        trial = lo[rows] * (1 - ratio)
        got, got_labels = search.ask(thetas[rows], trial)
        hi[rows] = torch.where(got, trial, hi[rows])
        hi_label[rows] = torch.where(got, got_labels, hi_label[rows])
        lo[rows] = trial
        descending[rows] = got
    lo[descending] = 0.0
    lo[~torch.isfinite(lo)] = 0.0
    return _bisect(search, thetas, lo, hi, hi_label, tolerance=tolerance, rtol=0.0)


def bracket_distance(
    search: RaySearch,
    thetas: Tensor,
    hi: Tensor,
    *,
    verify: bool = True,
    grow: float = 2.0,
    max_grow: int = 4,
    tolerance: float = 1e-5,
    rtol: float = 0.0,
    prune: bool = False,
) -> tuple[Tensor, Tensor]:
    """``g`` of directions whose boundary lies below a distance ``hi`` (e.g. ``||x_hat - x||``).

    With ``verify`` the points at ``hi`` are queried first; a row that is not adversarial there is
    grown by ``x grow`` up to ``max_grow`` times (``inf`` if it never flips). Then binary search on
    ``[0, hi]`` (Cheng et al.'s initial search). Without ``verify`` the caller vouches that ``hi`` is
    adversarial (labels then come back ``-1`` for rows never queried).

    Returns:
        ``(g [P] float64, labels long[P])`` as :func:`local_distance`.
    """
    count = thetas.shape[0]
    hi = hi.to(torch.float64).clone()
    lo = torch.zeros(count, dtype=torch.float64)
    hi_label = torch.full((count,), -1, dtype=torch.long)
    if verify:
        adv, labels = search.ask(thetas, hi)
        hi_label[adv] = labels[adv]
        pending = ~adv
        for _ in range(max_grow):
            rows = pending.nonzero().flatten()
            if rows.numel() == 0:
                break
            lo[rows] = hi[rows]
            hi[rows] = hi[rows] * grow
            got, got_labels = search.ask(thetas[rows], hi[rows])
            hi_label[rows] = torch.where(got, got_labels, hi_label[rows])
            pending[rows] = ~got
        hi[pending] = math.inf
    return _bisect(search, thetas, lo, hi, hi_label, tolerance=tolerance, rtol=rtol, prune=prune)


# ------------------------------------------------------------------------------------------------
# MAP of a point on a ray (no queries)


def map_255_along(clean: Tensor, thetas: Tensor, lam: Tensor) -> Tensor:
    """MAP (0-255) of ``clip(x + lam * theta) - x`` for ``thetas [P,...]``, ``lam [P]`` -> ``float64 [P]``."""
    finite = torch.isfinite(lam)
    safe = torch.where(finite, lam, torch.zeros_like(lam))
    scale = safe.to(device=thetas.device, dtype=thetas.dtype).reshape(-1, *([1] * (thetas.dim() - 1)))
    delta = (clean.unsqueeze(0) + scale * thetas).clamp(0.0, 1.0) - clean.unsqueeze(0)
    value = delta.abs().flatten(1).mean(dim=1).double().cpu() * 255.0
    return torch.where(finite, value, torch.full_like(value, math.inf))


def lambda_for_map(clean: Tensor, thetas: Tensor, level: Tensor, limit: Tensor, *, steps: int = 40) -> Tensor:
    """Largest ``lam <= limit`` with MAP(``clip(x + lam theta) - x``) <= ``level`` (bisection, no queries).

    MAP grows monotonically with ``lam`` along a ray, so this turns a MAP bound into a distance bound.
    """
    lo = torch.zeros_like(limit, dtype=torch.float64)
    hi = limit.to(torch.float64).clone()
    fits = map_255_along(clean, thetas, hi) <= level
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = map_255_along(clean, thetas, mid) <= level
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return torch.where(fits, limit.to(torch.float64), lo)


# ------------------------------------------------------------------------------------------------
# Direction optimisation (shared with the Heuristic attack)


def _unit(vectors: Tensor) -> Tensor:
    return vectors / vectors.flatten(1).norm(dim=1).clamp(min=1e-12).reshape(-1, *([1] * (vectors.dim() - 1)))


#: The returned adversarial video is ``clip(x + (1 + MARGIN) g theta)``: ``g`` is only known to the
#: search tolerance and a point *on* the boundary may flip with the model's numerical noise (batch
#: size, 8-bit rounding); 0.1% further out costs 0.1% of MAP and is verified by a final query.
MARGIN = 1e-3
#: Queries kept back from the optimisation for the final verification of the returned video.
RESERVE = 3


def state_map(clean: Tensor, theta: Tensor, g: float) -> float:
    """MAP (0-255) of the point the attack reports for direction ``theta [T,C,H,W]`` and distance ``g``."""
    return float(
        map_255_along(clean, theta.unsqueeze(0), torch.tensor([g * (1 + MARGIN)], dtype=torch.float64))[0]
    )


def record_progress(state: DirectionState, clean: Tensor, used: int, map_target: float) -> None:
    """Append the state's current point to its trace (MAP, every call) and, when the point changed since
    the last call (the optimisation only moves it on an improvement), to its distortion trace."""
    point = (clean + (state.g * (1 + MARGIN)) * state.theta).clamp(0.0, 1.0)
    queries, linf, value = distortion_point(used, clean, point)
    state.trace.append((queries, value, value <= map_target))
    if not state.distortion or state.distortion[-1][1:] != (linf, value):
        state.distortion.append((queries, linf, value))


@dataclass
class DirectionState:
    """The best direction found so far for one video.

    Attributes:
        theta: unit-norm direction ``[T,C,H,W]`` (zero outside ``mask``).
        g: its boundary distance (L2, [0, 1] pixel units); the adversarial point is ``clip(x + g theta)``.
        adv_label: the label the oracle gave at that point.
        mask: ``[T,C,H,W]`` float 0/1 region the direction may use, or ``None`` (whole video).
        iterations: direction updates accepted or tried so far.
        converged: ``beta`` fell below its floor (before reaching the MAP target, unless running to
            convergence).
    """

    theta: Tensor
    g: float
    adv_label: int
    mask: Tensor | None = None
    iterations: int = 0
    converged: bool = False
    trace: list[TracePoint] = field(default_factory=list)
    distortion: list[DistortionPoint] = field(default_factory=list)


def optimize_direction(
    search: RaySearch,
    state: DirectionState,
    *,
    used: Callable[[], int],
    map_target: float,
    samples: int,
    beta: float,
    eta: float,
    min_beta: float,
    max_iterations: int,
    ratio: float,
    tolerance: float,
    generator: torch.Generator | None,
    stop_at_target: bool = True,
) -> DirectionState:
    """Improve ``state`` in place with Opt-attack's updates until the stopping rule holds.

    The rule: MAP <= ``map_target`` (only when ``stop_at_target``; ``False`` runs to convergence, the
    papers' rule), ``beta`` below ``min_beta`` (converged), ``max_iterations`` updates, or the budget.

    Each iteration: RGF estimate of ``grad g`` from ``samples`` directions ``theta + beta u`` (``u``
    restricted to ``state.mask`` and normalised), each evaluated by :func:`local_distance` from the
    current ``g``; then a backtracking line search on ``eta`` (grow x2 while the distance keeps
    falling, else shrink x0.25), every trial using the current ``g`` as its upper bound. ``beta`` is
    divided by 10 when the estimate is zero or no step improves ``g``. Raises ``QueryBudgetExceeded``
    from the oracle; ``state`` always holds the best verified point.
    """
    clean = search.clean
    flat_mask = None if state.mask is None else state.mask.reshape(-1) != 0
    index = None if flat_mask is None else flat_mask.nonzero().flatten()
    shape = clean.shape

    def to_full(vectors: Tensor) -> Tensor:
        if index is None:
            return vectors.reshape(-1, *shape)
        full = torch.zeros(vectors.shape[0], clean.numel(), dtype=vectors.dtype, device=vectors.device)
        full[:, index] = vectors
        return full.reshape(-1, *shape)

    def center_of(theta: Tensor) -> Tensor:
        flat = theta.reshape(-1)
        return flat if index is None else flat[index]

    def record() -> None:
        record_progress(state, clean, used(), map_target)

    def done() -> bool:
        return stop_at_target and state_map(clean, state.theta, state.g) <= map_target

    def line_point(center: Tensor, step: Tensor, size: float, bound: float) -> tuple[Tensor, float, int]:
        theta = _unit(to_full((center - size * step).unsqueeze(0)))
        dist, labels = local_distance(
            search,
            theta,
            torch.tensor([bound], dtype=torch.float64),
            upper=True,
            ratio=ratio,
            tolerance=tolerance,
        )
        return theta[0], float(dist[0]), int(labels[0])

    while not done():
        if state.iterations >= max_iterations:
            break
        if beta < min_beta:
            state.converged = True
            break
        state.iterations += 1
        g_now = state.g
        center = center_of(state.theta)

        def objective(candidates: Tensor, g_now: float = g_now) -> Tensor:
            thetas = _unit(to_full(candidates))
            dist, _ = local_distance(
                search,
                thetas,
                torch.full((thetas.shape[0],), g_now, dtype=torch.float64),
                ratio=ratio,
                tolerance=tolerance,
            )
            # A direction whose boundary was not found carries no usable difference.
            return torch.where(torch.isfinite(dist), dist, torch.full_like(dist, g_now)).to(candidates.dtype)

        estimate = rgf_estimate(objective, center, g_now, samples=samples, beta=beta, generator=generator)
        if not bool(estimate.abs().sum() > 0):
            beta /= 10
            record()
            continue
        best: tuple[Tensor, float, int, float] | None = None
        theta, dist, label = line_point(center, estimate, eta, g_now)
        if dist < g_now:
            best = (theta, dist, label, eta)
            size = eta
            for _ in range(15):
                size *= 2
                theta, dist, label = line_point(center, estimate, size, best[1])
                if dist < best[1]:
                    best = (theta, dist, label, size)
                else:
                    break
        else:
            size = eta
            for _ in range(15):
                size *= 0.25
                theta, dist, label = line_point(center, estimate, size, g_now)
                if dist < g_now:
                    best = (theta, dist, label, size)
                    break
        if best is None:
            beta /= 10
        else:
            state.theta, state.g, state.adv_label, eta = best[0], best[1], best[2], best[3]
        record()
    return state


# ------------------------------------------------------------------------------------------------
# Initial directions


def select_init_candidates(
    init_videos: Tensor | None,
    init_labels: Tensor | None,
    label: int,
    target: int | None,
    count: int,
    generator: torch.Generator | None,
) -> Tensor | None:
    """Pick up to ``count`` candidate videos ``[K,T,C,H,W]``: other classes (untargeted) or the target.

    Without labels every video is a candidate (the searches then discard those that are not
    adversarial). The choice among eligible videos is random (``generator``).
    """
    if init_videos is None:
        return None
    if init_labels is None:
        eligible = torch.arange(init_videos.shape[0])
    else:
        labels = init_labels.reshape(-1).cpu()
        eligible = (
            (labels != label).nonzero().flatten()
            if target is None
            else (labels == target).nonzero().flatten()
        )
    if eligible.numel() == 0:
        return None
    order = torch.randperm(eligible.numel(), generator=generator)[:count]
    return init_videos[eligible[order]]


def _random_candidates(clean: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    # Without candidate videos: uniform random videos, i.e. random directions from x (Cheng et al. draw
    # random Gaussian directions for the untargeted attack).
    noise = torch.rand((count, *clean.shape), generator=generator, dtype=torch.float32)
    return noise.to(clean.device, clean.dtype)


def _noisy_candidates(clean: Tensor, count: int, scale: float, generator: torch.Generator | None) -> Tensor:
    noise = torch.randn((count, *clean.shape), generator=generator, dtype=torch.float32).to(clean.device)
    return (clean.unsqueeze(0) + scale * noise.to(clean.dtype)).clamp(0, 1)


def _start_sources(
    given: Tensor | None, clean: Tensor, count: int, generator: torch.Generator | None
) -> list[tuple[str, Callable[[], Tensor]]]:
    """Where initial directions are looked for, in order, until one candidate crosses the boundary: the
    attacker's clips, then random starts of several kinds (a model may put all uniform noise in one class,
    so that no noise start crosses from a clip of that class; strong Gaussian noise around the clip, its
    negative and a flat grey video cross elsewhere). Each source is drawn only when the ones before failed,
    so the random stream of a run whose first source crossed is unchanged."""
    sources: list[tuple[str, Callable[[], Tensor]]] = []
    if given is not None:
        sources.append(("attacker-data", lambda: given))
    sources.append(("uniform-noise", lambda: _random_candidates(clean, count, generator)))
    for scale in (0.25, 0.5):
        sources.append((f"gaussian-{scale:g}", lambda s=scale: _noisy_candidates(clean, count, s, generator)))
    sources.append(("negative", lambda: (1 - clean).unsqueeze(0)))
    sources.append(("grey", lambda: torch.full_like(clean, 0.5).unsqueeze(0)))
    return sources


def initial_directions(
    search: RaySearch,
    candidates: Tensor,
    *,
    tolerance: float,
    rtol: float,
    prune: bool = True,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Unit directions ``theta_k = (x_hat_k - x) M / ||.||`` and their ``g`` (bisection on [0, ||p_k M||]).

    Returns ``(thetas [K,...], g [K] float64, labels [K])``. With ``prune``, rows that cannot beat the
    best distance stop early (their ``g`` is then only an upper bound, or ``inf``).
    """
    deltas = candidates - search.clean.unsqueeze(0)
    if mask is not None:
        deltas = deltas * mask.unsqueeze(0)
    norms = deltas.flatten(1).norm(dim=1).double()
    thetas = _unit(deltas)
    dist, labels = bracket_distance(search, thetas, norms, tolerance=tolerance, rtol=rtol, prune=prune)
    dist = torch.where(norms > 0, dist, torch.full_like(dist, math.inf))
    return thetas, dist, labels


# ------------------------------------------------------------------------------------------------
# The attack


def _with_reserve(labels_of: LabelFn, remaining_of: Callable[[int], int | None], owner: int) -> LabelFn:
    """``labels_of`` that refuses (``QueryBudgetExceeded``) calls that would eat into the last
    :data:`RESERVE` queries of the budget, kept for :func:`_verify`. It reads the oracle's count."""

    def ask(videos: Tensor) -> Tensor:
        left = remaining_of(owner)
        if left is not None and left - videos.shape[0] < RESERVE:
            raise QueryBudgetExceeded(owner, -1, videos.shape[0], -1)
        return labels_of(videos)

    return ask


def _verify(search: RaySearch, state: DirectionState, labels_of: LabelFn) -> tuple[Tensor, int]:
    """Query the returned video alone (as a user would) at ``(1 + MARGIN) g``; if numerical noise puts it
    on the wrong side, step out (x10 the margin, up to :data:`RESERVE` queries). Returns the video and
    the label the oracle gave it (the label seen during the search when no query is left)."""
    margin = MARGIN
    theta = state.theta.unsqueeze(0)
    point = search.points(theta, torch.tensor([state.g * (1 + margin)], dtype=torch.float64))
    label = state.adv_label
    for _ in range(RESERVE):
        point = search.points(theta, torch.tensor([state.g * (1 + margin)], dtype=torch.float64))
        try:
            adv, got = search.adversarial_unchecked(point, labels_of)
        except QueryBudgetExceeded:
            break
        label = int(got[0])
        if bool(adv[0]):
            state.g = state.g * (1 + margin) / (1 + MARGIN)  # state_map() is then the returned point's MAP
            break
        margin *= 10
    return point[0], label


def _labels_function(oracle: LabelOracle | ScoreOracle, owner: int) -> LabelFn:
    if isinstance(oracle, LabelOracle):
        return lambda videos: oracle.query(videos, owner=owner)
    if isinstance(oracle, ScoreOracle):
        return lambda videos: oracle.query(videos, owner=owner).labels[:, 0]
    raise ValueError(f"oracle must be a vidattack LabelOracle (or ScoreOracle), got {type(oracle).__name__}")


def _check_common(
    videos: Tensor, map_target: float, samples: int, beta: float, eta: float, num_init: int
) -> None:
    validate_video(videos, "videos")
    if not map_target > 0:
        raise ValueError(f"map_target must be > 0 (0-255 scale), got {map_target}")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int, got {samples!r}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not eta > 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    if not isinstance(num_init, int) or num_init < 1:
        raise ValueError(f"num_init must be a positive int, got {num_init!r}")


def _check_init(init_videos: Tensor | None, init_labels: Tensor | None, videos: Tensor) -> None:
    if init_videos is None:
        return
    validate_video(init_videos, "init_videos")
    if init_videos.shape[1:] != videos.shape[1:]:
        raise ValueError(
            f"init_videos must have the videos' frame shape {tuple(videos.shape[1:])}, "
            f"got {tuple(init_videos.shape[1:])}"
        )
    if init_labels is not None and init_labels.numel() != init_videos.shape[0]:
        raise ValueError(
            f"init_labels must have one entry per init video ({init_videos.shape[0]}), "
            f"got {init_labels.numel()}"
        )


InitFn = Callable[[RaySearch, Tensor, int, int | None], DirectionState | None]


def run_direction_attack(
    oracle: LabelOracle | ScoreOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    init_videos: Tensor | None,
    init_labels: Tensor | None,
    *,
    target: Tensor | int | list[int] | None,
    map_target: float | None,
    num_init: int,
    samples: int,
    beta: float,
    eta: float,
    min_beta: float,
    ratio: float,
    tolerance: float,
    init_rtol: float,
    max_iterations: int,
    generator: torch.Generator | None,
    method: str,
    labels_function: Callable[[int], LabelFn] | None = None,
    used_function: Callable[[int], int] | None = None,
    remaining_function: Callable[[int], int | None] | None = None,
    init_function: Callable[..., DirectionState | None] | None = None,
    extras_function: Callable[[list[DirectionState | None], list[dict]], tuple[dict, dict]] | None = None,
    converge: bool = False,
) -> AttackResult:
    """The loop shared by :func:`opt_attack` and the Heuristic attack: per video, initialise then optimise.

    ``init_function(search, candidates, owner=i, info=dict, used=callable, generator=...)`` returns the
    initial :class:`DirectionState` (``None``: no adversarial direction) and may fill ``info``; the default is
    Opt-attack's (smallest ``g`` over the candidates, whole video). ``extras_function(states, infos)``
    returns ``(shared, per_video)`` extras (see :func:`vidattack.result.video_extras`).

    Every video's extras say why it stopped (``stop_reason``): ``success``, ``no-start-crossed`` (no
    initial candidate was adversarial, so there was no boundary to descend to), ``init-budget`` (the
    budget ran out while the initial directions were being searched), ``converged`` (``beta`` fell below
    ``min_beta`` above the MAP target), ``max-iterations`` or ``budget``.

    ``converge=True`` is the papers' rule (Opt-attack and the Heuristic attack run to convergence): the
    MAP no longer stops the optimisation, which runs until ``beta < min_beta``, ``max_iterations`` or the
    budget; ``map_target`` is then only the success bound (default: none, ``inf``), so the queries are
    those to convergence (the papers' MQ) and the MAP is the converged one. ``extras["converged"]``
    says whether a video converged or was cut by the budget / iteration cap.
    """
    start_time = time.perf_counter()
    targeted = target is not None
    if map_target is None:
        default = DEFAULT_MAP_TARGET_TARGETED if targeted else DEFAULT_MAP_TARGET
        map_target = math.inf if converge else default
    _check_common(videos, map_target, samples, beta, eta, num_init)
    _check_init(init_videos, init_labels, videos)
    n = videos.shape[0]
    clean = videos.detach().clone()
    if labels_function is None:
        _labels_function(oracle, 0)  # checks the oracle's type before anything runs
    # the Heuristic attack passes its (score, label) oracle pair
    classes = (oracle if hasattr(oracle, "num_classes") else oracle[0]).num_classes(clean)
    labels, targets = validate_label_and_target(label, target, n, classes)
    labels, targets = labels.cpu(), None if targets is None else targets.cpu()
    labels_of = labels_function or (lambda owner: _labels_function(oracle, owner))
    used_of = used_function or (lambda owner: oracle.used(owner))
    remaining_of = remaining_function or (lambda owner: oracle.remaining(owner))

    adversarial = clean.clone()
    success = torch.zeros(n, dtype=torch.bool)
    queries = torch.zeros(n, dtype=torch.long)
    iterations = torch.zeros(n, dtype=torch.long)
    adv_label = labels.clone()
    traces: list[list[TracePoint]] = []
    states: list[DirectionState | None] = []
    infos: list[dict] = []
    final_g = torch.full((n,), math.inf, dtype=torch.float64)
    converged = torch.zeros(n, dtype=torch.bool)
    for i in range(n):
        before = used_of(i)

        def used(i: int = i, before: int = before) -> int:
            return used_of(i) - before

        x = clean[i]
        y = int(labels[i])
        t = None if targets is None else int(targets[i])
        search = RaySearch(_with_reserve(labels_of(i), remaining_of, i), x, y, t)
        given = select_init_candidates(init_videos, init_labels, y, t, num_init, generator)
        info: dict = {}
        state: DirectionState | None = None
        try:
            for kind, make in _start_sources(given, x, num_init, generator):
                candidates = make()
                if init_function is None:
                    thetas, dist, cand_labels = initial_directions(
                        search, candidates, tolerance=tolerance, rtol=init_rtol
                    )
                    if bool(torch.isfinite(dist).any()):
                        best = int(dist.argmin())
                        state = DirectionState(thetas[best], float(dist[best]), int(cand_labels[best]))
                else:
                    state = init_function(search, candidates, owner=i, info=info, used=used, generator=generator)
                info.setdefault("starts_tried", []).append(kind)
                if state is not None:
                    info["start_kind"] = kind
                    break
            info["init_queries"] = used()
            if state is not None:
                # The candidates' g was bisected only to a relative width; refine it to `tolerance` so that
                # the first gradient estimate compares like with like.
                refined, refined_label = local_distance(
                    search,
                    state.theta.unsqueeze(0),
                    torch.tensor([state.g], dtype=torch.float64),
                    ratio=ratio,
                    tolerance=tolerance,
                )
                if math.isfinite(float(refined[0])):
                    state.g, state.adv_label = float(refined[0]), int(refined_label[0])
                info["g0"] = state.g
                record_progress(state, x, used(), map_target)
                optimize_direction(
                    search,
                    state,
                    used=used,
                    map_target=map_target,
                    samples=samples,
                    beta=beta,
                    eta=eta,
                    min_beta=min_beta,
                    max_iterations=max_iterations,
                    ratio=ratio,
                    tolerance=tolerance,
                    generator=generator,
                    stop_at_target=not converge,
                )
        except QueryBudgetExceeded:
            pass  # the budget is spent: keep the best verified point
        info.setdefault("init_queries", used())
        info["budget_hit"] = remaining_of(i) is not None and remaining_of(i) <= RESERVE
        infos.append(info)
        states.append(state)
        queries[i] = used()
        if state is None:
            traces.append([])
            continue
        point, verified_label = _verify(search, state, labels_of(i))
        adversarial[i] = point
        adv_label[i] = verified_label
        iterations[i] = state.iterations
        final_g[i] = state.g
        converged[i] = state.converged
        value = state_map(x, state.theta, state.g)
        verified = bool(
            is_adversarial(
                torch.tensor([verified_label]),
                labels[i : i + 1],
                None if targets is None else targets[i : i + 1],
            )[0]
        )
        success[i] = verified and value <= map_target
        queries[i] = used()
        traces.append(state.trace)
    shared: dict = {"map_target": map_target, "converge": converge}
    per_video: dict = {
        "g": final_g,
        "init_queries": torch.tensor([info["init_queries"] for info in infos], dtype=torch.long),
        "converged": converged,
        "g0": torch.tensor([info.get("g0", math.inf) for info in infos], dtype=torch.float64),
        "stop_reason": [
            _stop_reason(bool(success[i]), states[i], infos[i], max_iterations) for i in range(n)
        ],
        "start_kind": [info.get("start_kind") for info in infos],
        "starts_tried": [",".join(info.get("starts_tried", [])) for info in infos],
        "distortion_trace": [[] if state is None else state.distortion for state in states],
    }
    if extras_function is not None:
        more_shared, more_per_video = extras_function(states, infos)
        shared.update(more_shared)
        per_video.update(more_per_video)
    extras = video_extras(n, shared, **per_video)
    return AttackResult(
        adversarial=adversarial,
        success=success,
        queries=queries,
        iterations=iterations,
        label=labels,
        target=targets,
        adv_label=adv_label,
        seconds=time.perf_counter() - start_time,
        trace=traces,
        extras=extras,
        method=method,
    )


def _stop_reason(success: bool, state: DirectionState | None, info: dict, max_iterations: int) -> str:
    if success:
        return "success"
    if state is None:
        if info.get("budget_hit"):
            return "init-budget"
        return f"no-start-crossed (tried {', '.join(info.get('starts_tried', [])) or 'nothing'})"
    if state.converged:
        return "converged"
    if state.iterations >= max_iterations:
        return "max-iterations"
    return "budget"
