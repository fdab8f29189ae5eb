"""Projected gradient loops driven by a black-box gradient estimate (V-BAD Sec. 3.2, Eq. 2 and Alg. 1).

Two reusable loops that only see the target through a top-1 :class:`~vidattack.threat.ScoreOracle` and
an arbitrary gradient-estimate callable, so any score-based attack can drive them (V-BAD's
partition-rectified NES, SVA's key-frame NES, plain pixel NES):

* :func:`untargeted_blackbox_pgd`: Eq. 2, ``x_i = Proj_{eps-ball}(x_{i-1} + alpha * sign(g_hat))`` with a
  dynamically decayed step size, until the true label leaves the top-1 or the budget runs out;
* :func:`targeted_blackbox_pgd`: Alg. 1, start from a video of the target class, shrink the allowed
  distance ``eps`` to the clean video by ``delta_eps`` per successful step while keeping the target the
  top-1 class, with the paper's adaptive rules (Sec. 4.1): halve ``alpha`` when the target is lost
  more than half the time, halve ``delta_eps`` after repeated failures to shrink.

Both accept a frame mask and a pixel mask (:func:`vidattack.perturbation.build_mask`): the perturbation
lives only where the mask is 1 and is *exactly* zero elsewhere (the estimate, every step and the
targeted start are multiplied by the mask), which is how SVA restricts V-BAD-style steps to key frames.

The gradient-estimate callable has the signature :data:`GradientEstimate`: it receives the current
adversarial video ``[1,T,C,H,W]`` and the owner to charge, may query the oracle (the population is best
sent as one batched call), and returns an estimate ``[1,T,C,H,W]`` of the gradient of the quantity the
loop *ascends*: ``-P(label | x)`` untargeted, ``P(target | x)`` targeted (only the sign of each entry
is used). :class:`~vidattack.threat.QueryBudgetExceeded` raised inside it ends the loop cleanly with the
best video so far; the budget is never exceeded because the oracle refuses before running the model.

Queries are never counted here: ``oracle.used(owner)`` is the count. Every proposed step costs one query
(to read the top-1 label and probability at the new point).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from vidattack.perturbation import build_mask, clip_to_valid, project
from vidattack.result import TracePoint
from vidattack.threat import QueryBudgetExceeded, ScoreOracle
from vidattack.video import validate_video

__all__ = [
    "GradientEstimate",
    "FoldedEstimate",
    "BlackBoxPGDOutcome",
    "untargeted_blackbox_pgd",
    "targeted_blackbox_pgd",
    "project_towards",
    "start_candidates",
]

#: ``estimate(adversarial [1,T,C,H,W], owner) -> [1,T,C,H,W]``: gradient estimate of the ascended objective.
GradientEstimate = Callable[[Tensor, int], Tensor]


class FoldedEstimate(Protocol):
    """A :data:`GradientEstimate` that can also read the point it estimates at, in the same oracle call.

    ``estimate_and_read(adversarial, owner) -> (estimate, top-1 label, its probability)`` at
    ``adversarial``; it costs the population plus one query.
    """

    def __call__(self, adversarial: Tensor, owner: int) -> Tensor: ...

    def estimate_and_read(self, adversarial: Tensor, owner: int) -> tuple[Tensor, int, float]: ...


@dataclass
class BlackBoxPGDOutcome:
    """What one run of a black-box PGD loop produced, for one video.

    Attributes:
        adversarial: ``[1,T,C,H,W]`` in [0, 1], within ``eps`` of the clean video (L-inf) and zero
            outside the mask: the successful video, or the best one within the bound on failure.
        success: the adversarial is classified as required (checked through the oracle) within the bound.
        adv_label: the oracle's top-1 label of ``adversarial`` (``-1``: no query left to read it).
        iterations: gradient estimates made.
        queries: queries charged to the owner during this run (``oracle.used`` difference).
        trace: ``(queries so far, probability of the label / target at the current point, success)``.
        final_eps: targeted: the distance bound reached (``eps`` on success); untargeted: ``eps``.
        step_size: the step size at the end (after dynamic halving).
        stop: why the loop ended: ``"success"``, ``"budget"``, ``"max_iterations"`` or ``"start-not-target"``.
    """

    adversarial: Tensor
    success: bool
    adv_label: int
    iterations: int
    queries: int
    trace: list[TracePoint] = field(default_factory=list)
    final_eps: float = 0.0
    step_size: float = 0.0
    stop: str = ""


def _prepare(
    oracle: ScoreOracle,
    video: Tensor,
    frame_mask: Tensor | None,
    pixel_mask: Tensor | None,
    mask: Tensor | None,
) -> tuple[Tensor, Tensor | None]:
    if not isinstance(oracle, ScoreOracle):
        raise ValueError(f"oracle must be a vidattack.ScoreOracle, got {type(oracle).__name__}")
    validate_video(video, "video")
    if video.shape[0] != 1:
        raise ValueError(f"video must hold one clip [1,T,C,H,W], got N={video.shape[0]}")
    built = build_mask(video.shape, frame_mask=frame_mask, pixel_mask=pixel_mask, device=video.device)
    if mask is not None:
        extra = (torch.as_tensor(mask, device=video.device) != 0).to(video.dtype)
        try:
            torch.broadcast_shapes(extra.shape, video.shape)
        except RuntimeError:
            raise ValueError(
                f"mask must broadcast to {tuple(video.shape)}, got {tuple(extra.shape)}"
            ) from None
        built = extra if built is None else built * extra
    return video.detach().clone(), built


class _Momentum:
    """Exponential average of scale-normalised gradient estimates (``momentum`` 0: the raw estimate).

    Each estimate is divided by its mean absolute value first, so that every step weighs the same in
    the average whatever the estimator's scale (rank-fitness NES estimates scale with ``1 / sigma``).
    """

    def __init__(self, momentum: float) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.average: Tensor | None = None

    def __call__(self, estimate: Tensor) -> Tensor:
        if self.momentum == 0.0:
            return estimate
        scale = estimate.abs().mean()
        normalised = estimate / scale if float(scale) > 0 else estimate
        if self.average is None:
            self.average = normalised
        else:
            self.average = self.momentum * self.average + (1.0 - self.momentum) * normalised
        return self.average


def project_towards(clean: Tensor, candidate: Tensor, bound: float, region: Tensor | None = None) -> Tensor:
    """``candidate`` moved into the L-inf ball of radius ``bound`` around ``clean`` and into [0, 1].

    ``candidate - clean`` is zeroed outside ``region`` (a 0/1 mask broadcastable to the videos), then
    clipped to ``[-bound, bound]``; ``bound=inf`` only applies the mask and the valid range.
    """
    delta = candidate - clean
    if region is not None:
        delta = delta * region
    return clean + clip_to_valid(clean, project(delta, bound, "linf"))


def _read(oracle: ScoreOracle, video: Tensor, owner: int) -> tuple[int, float]:
    answer = oracle.query(video, owner=owner)
    return int(answer.labels[0, 0]), float(answer.probs[0, 0])


def untargeted_blackbox_pgd(
    oracle: ScoreOracle,
    video: Tensor,
    label: int,
    estimate: GradientEstimate,
    *,
    eps: float = 0.05,
    step_size: float | None = None,
    min_step_size: float | None = None,
    plateau: int = 5,
    momentum: float = 0.0,
    frame_mask: Tensor | None = None,
    pixel_mask: Tensor | None = None,
    mask: Tensor | None = None,
    owner: int = 0,
    max_iterations: int | None = None,
    start: Tensor | None = None,
    fold_reads: bool = False,
    on_stall: Callable[[], None] | None = None,
) -> BlackBoxPGDOutcome:
    """Untargeted black-box PGD (V-BAD Eq. 2) on one video ``[1,T,C,H,W]`` in [0, 1], L-inf ball ``eps``.

    Each iteration: ``g = estimate(x_adv, owner)``; ``x_adv <- clip(x + Proj_eps(x_adv + alpha * sign(g *
    mask) - x))``; one query reads the top-1 at the new point; stop as soon as it is not ``label``.

    Dynamic step size: V-BAD uses "dynamically chosen step size" (Sec. 4.1) without a rule; we follow
    the NES attack it builds on (Ilyas et al. 2018, ref. [19]) and halve ``alpha`` (down to
    ``min_step_size``) when the top-1 probability of ``label`` has not reached a new minimum for
    ``plateau`` consecutive steps.

    Args:
        oracle: top-1 score oracle (budget enforced by it).
        label: the true class, attacked away from.
        estimate: see :data:`GradientEstimate` (ascends ``-P(label | x)``).
        eps: L-inf bound in [0, 1] units (V-BAD: 0.05, Sec. 4.1).
        step_size: initial ``alpha`` (default ``eps / 4``).
        min_step_size: floor of ``alpha`` (default ``eps / 50``).
        plateau: steps without improvement before ``alpha`` is halved.
        momentum: the step follows ``sign(m)``, ``m <- momentum * m + (1 - momentum) * g / mean|g|``
            (0: the raw estimate, V-BAD's Eq. 2 as written). The NES attack V-BAD builds on uses 0.9
            in its public implementation (Ilyas et al. 2018, ref. [19]).
        frame_mask, pixel_mask, mask: where the perturbation may live (see module docstring).
        owner: the oracle owner charged (the index of this video in the attacked batch).
        max_iterations: optional cap on gradient estimates.
        start: optional starting point ``[1,T,C,H,W]`` (default: the clean video); its perturbation is
            masked, projected on the eps-ball and clipped to [0, 1] first, so a warm start from an
            earlier run (SVA's episodes) keeps every bound.
        fold_reads: read each new point in the same oracle call as the estimate's population around
            it (``estimate`` must be a :class:`FoldedEstimate`), instead of alone. The same queries
            per step, in one batched forward instead of a batch of one; but when the point is already
            adversarial, the population read with it was not needed: up to one population of extra
            queries per attacked video. For wall-time-bound runs (a batch of one costs about as
            much as a whole batch on a GPU); the default favours queries.
        on_stall: called when the step size is already at ``min_step_size`` and the probability
            still stalls for ``plateau`` steps (V-BAD uses it to enlarge its NES population).
    """
    clean, region = _prepare(oracle, video, frame_mask, pixel_mask, mask)
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    alpha = eps / 4 if step_size is None else float(step_size)
    floor = eps / 50 if min_step_size is None else float(min_step_size)
    if not alpha > 0 or not floor > 0:
        raise ValueError(f"step_size and min_step_size must be > 0, got {alpha}, {floor}")
    if plateau < 1:
        raise ValueError(f"plateau must be >= 1, got {plateau}")
    smooth = _Momentum(momentum)
    base = oracle.used(owner)
    adv = clean.clone()
    if start is not None:
        offset = start.detach().to(clean.device, clean.dtype).reshape(clean.shape) - clean
        if region is not None:
            offset = offset * region
        adv = clean + clip_to_valid(clean, project(offset, eps, "linf"))
    if fold_reads and not callable(getattr(estimate, "estimate_and_read", None)):
        raise ValueError(
            "fold_reads needs an estimate with an estimate_and_read(video, owner) method "
            f"(a FoldedEstimate such as VBADEstimator), got {type(estimate).__name__}"
        )
    trace: list[TracePoint] = []
    iterations, stop, top, success = 0, "budget", -1, False
    best, since = float("inf"), 0
    unread = False  # fold_reads: the current point has not been read yet

    def observe(new_top: int, new_prob: float) -> None:
        # The answer at the current point: success, trace, and the plateau rule of the step size.
        nonlocal top, success, best, since, alpha
        top, success = new_top, new_top != label
        current = 0.0 if success else new_prob
        trace.append((oracle.used(owner) - base, current, success))
        if current < best:
            best, since = current, 0
        else:
            since += 1
            if since >= plateau:
                if alpha <= floor and on_stall is not None:
                    on_stall()
                alpha, since = max(alpha / 2, floor), 0

    try:
        if fold_reads:
            unread = True
        else:
            observe(*_read(oracle, adv, owner))
        while not success:
            if max_iterations is not None and iterations >= max_iterations:
                stop = "max_iterations"
                break
            if fold_reads:
                direction, new_top, new_prob = estimate.estimate_and_read(adv, owner)  # type: ignore[attr-defined]
                unread = False
                observe(new_top, new_prob)
                if success:
                    break
            else:
                direction = estimate(adv, owner)
            iterations += 1
            if region is not None:
                direction = direction * region
            direction = smooth(direction)
            delta = adv - clean + alpha * direction.sign()
            if region is not None:
                delta = delta * region
            adv = clean + clip_to_valid(clean, project(delta, eps, "linf"))
            if fold_reads:
                unread = True
            else:
                observe(*_read(oracle, adv, owner))
    except QueryBudgetExceeded:
        pass
    if unread:
        # The last point was to be read with the next population, which the budget or the iteration
        # cap stopped: read it alone if a query is left.
        try:
            observe(*_read(oracle, adv, owner))
        except QueryBudgetExceeded:
            top = -1
    if success:
        stop = "success"
    return BlackBoxPGDOutcome(
        adv, success, top, iterations, oracle.used(owner) - base, trace, eps, alpha, stop
    )


def targeted_blackbox_pgd(
    oracle: ScoreOracle,
    video: Tensor,
    target: int,
    start: Tensor,
    estimate: GradientEstimate,
    *,
    eps: float = 0.05,
    start_eps: float | None = None,
    step_size: float | None = None,
    min_step_size: float | None = None,
    eps_decay: float = 0.05,
    min_eps_decay: float | None = None,
    decay_patience: int = 100,
    loss_window: int = 10,
    step_on_failure: bool = False,
    shrink_tries: int = 1,
    adaptive_decay: bool = False,
    momentum: float = 0.0,
    frame_mask: Tensor | None = None,
    pixel_mask: Tensor | None = None,
    mask: Tensor | None = None,
    owner: int = 0,
    max_iterations: int | None = None,
    on_stall: Callable[[], None] | None = None,
) -> BlackBoxPGDOutcome:
    """Targeted black-box PGD by shrinking from a target-class video (V-BAD Alg. 1) on one video.

    ``x_adv`` starts at ``start`` (restricted to the mask: ``x + mask * (start - x)``), which must be
    classified as ``target`` (checked with one query; otherwise the run stops with
    ``stop="start-not-target"``). While ``eps_cur > eps``: ``g = estimate(x_adv)``; propose
    ``clip(x_adv + alpha * sign(g))`` into the ball of radius ``eps_hat = max(eps_cur - delta_eps, eps)``;
    if the target stays top-1, accept it and ``eps_cur = eps_hat``, then try a second step of the same
    ``g`` inside ``eps_cur`` and keep it if the target stays top-1 (Alg. 1).

    Adaptive rules (Sec. 4.1): if more than half of the last ``loss_window`` second steps lost the
    target, ``alpha`` is halved; after ``decay_patience`` consecutive failures to shrink ``eps``,
    ``delta_eps`` is halved (the paper: 100). (Counting the shrinking proposals too was tried on the
    zoo and did worse: see benchmarks/results_vbad.md, "Targeted".)

    Two extensions, off by default here: ``shrink_tries`` proposals with ``delta_eps``,
    ``delta_eps / 2``, ... read in one batched call, of which the largest shrink that keeps the target
    is taken (Alg. 1 tries one and discards the estimate when it fails); and ``adaptive_decay``, with
    which ``delta_eps`` follows the shrink that worked (doubled after a full-size one, up to
    ``eps_decay``), drops below the tried bracket when none worked, and such a total failure also
    counts as a lost target for the ``alpha`` rule (without it, ``alpha`` only adapts after successful
    shrinks and a too-large step can stall the attack for good).

    Args:
        oracle: top-1 score oracle.
        video: the clean video ``[1,T,C,H,W]``.
        target: the target class.
        start: a video of the target class ``[1,T,C,H,W]`` (or ``[T,C,H,W]``) in [0, 1].
        estimate: see :data:`GradientEstimate` (ascends ``P(target | x)``).
        eps: the final L-inf bound (``epsilon_adv``; V-BAD 0.05).
        start_eps: ``epsilon_0`` (default: the L-inf distance between the masked start and ``video``).
        step_size: initial ``alpha`` (default ``eps / 5``); min_step_size its floor (default ``eps / 500``).
        eps_decay: initial ``delta_eps`` (not given in the paper); min_eps_decay its floor (default
            ``eps_decay / 1000``).
        decay_patience: failures to shrink before ``delta_eps`` is halved (paper: 100).
        loss_window: number of recent second steps over which the loss ratio is judged.
        step_on_failure: also take the ``alpha`` step within the current ``eps`` when shrinking fails
            (not in Alg. 1, which then discards the estimate; off by default).
        momentum: average of normalised estimates the steps follow, as in
            :func:`untargeted_blackbox_pgd` (0: Alg. 1 as written).
        shrink_tries, adaptive_decay: see above (1 and False: Alg. 1 as written).
        on_stall: called when ``alpha`` is already at its floor and the target is still lost more than
            half the time (V-BAD uses it to enlarge its NES population).
        frame_mask, pixel_mask, mask, owner, max_iterations: as in :func:`untargeted_blackbox_pgd`.
    """
    clean, region = _prepare(oracle, video, frame_mask, pixel_mask, mask)
    if not isinstance(start, Tensor):
        raise ValueError(f"start must be a target-class video tensor [1,T,C,H,W], got {type(start).__name__}")
    start = start.reshape(1, *start.shape[-4:]) if start.dim() == 4 else start
    validate_video(start, "start")
    if start.shape != clean.shape:
        raise ValueError(
            f"start must have the attacked video's shape {tuple(clean.shape)}, got {tuple(start.shape)}"
        )
    if not eps > 0 or not eps_decay > 0:
        raise ValueError(f"eps and eps_decay must be > 0, got {eps}, {eps_decay}")
    if decay_patience < 1 or loss_window < 1:
        raise ValueError(f"decay_patience and loss_window must be >= 1, got {decay_patience}, {loss_window}")
    if not isinstance(shrink_tries, int) or shrink_tries < 1:
        raise ValueError(f"shrink_tries must be an int >= 1, got {shrink_tries!r}")
    alpha = eps / 5 if step_size is None else float(step_size)
    alpha_floor = eps / 500 if min_step_size is None else float(min_step_size)
    decay = initial_decay = float(eps_decay)
    decay_floor = decay / 1000 if min_eps_decay is None else float(min_eps_decay)
    smooth = _Momentum(momentum)

    def constrain(candidate: Tensor, bound: float) -> Tensor:
        return project_towards(clean, candidate, bound, region)

    start = start.detach().to(clean.device, clean.dtype)
    adv = constrain(start, float("inf"))
    current_eps = float((adv - clean).abs().max()) if start_eps is None else float(start_eps)
    if start_eps is not None:
        adv = constrain(adv, current_eps)
    base = oracle.used(owner)
    trace: list[TracePoint] = []
    iterations = 0
    top = -1

    def finish(success: bool, stop: str, top: int) -> BlackBoxPGDOutcome:
        final = adv
        label_out = top
        if not success:
            # Alg. 1's x_adv lies outside the eps-ball until it succeeds: return its projection, within
            # the bound, and read its label if the budget allows.
            final = constrain(adv, eps)
            try:
                label_out, _ = _read(oracle, final, owner)
            except QueryBudgetExceeded:
                label_out = -1
            success = label_out == target
        return BlackBoxPGDOutcome(
            final,
            success,
            label_out,
            iterations,
            oracle.used(owner) - base,
            trace,
            current_eps,
            alpha,
            "success" if success else stop,
        )

    try:
        top, prob = _read(oracle, adv, owner)
    except QueryBudgetExceeded:
        return finish(False, "budget", -1)
    trace.append((oracle.used(owner) - base, prob if top == target else 0.0, False))
    if top != target:
        return finish(False, "start-not-target", top)
    outcomes: deque[bool] = deque(maxlen=loss_window)
    failures = 0

    def record(kept: bool) -> None:
        # Sec. 4.1: halve alpha when the target was lost in more than half of the recent proposals.
        nonlocal alpha
        outcomes.append(kept)
        if len(outcomes) == outcomes.maxlen and outcomes.count(False) > len(outcomes) / 2:
            if alpha <= alpha_floor and on_stall is not None:
                on_stall()
            alpha = max(alpha / 2, alpha_floor)
            outcomes.clear()

    try:
        while current_eps > eps:
            if max_iterations is not None and iterations >= max_iterations:
                return finish(False, "max_iterations", top)
            direction = estimate(adv, owner)
            iterations += 1
            if region is not None:
                direction = direction * region
            step = alpha * smooth(direction).sign()
            # Alg. 1's shrinking proposal with decay delta, and with delta/2, delta/4, ... when
            # shrink_tries > 1: all read in one batched oracle call; the largest shrink that keeps the
            # target wins.
            bounds = sorted({max(current_eps - decay / 2**k, eps) for k in range(shrink_tries)})
            proposals = torch.cat([constrain(adv + step, bound) for bound in bounds])
            answer = oracle.query(proposals, owner=owner)
            kept = (answer.labels[:, 0] == target).nonzero().flatten()
            new_top = target if kept.numel() else int(answer.labels[0, 0])
            if kept.numel():
                chosen = int(kept[0])
                proposal, proposed_eps = proposals[chosen : chosen + 1], bounds[chosen]
                new_prob = float(answer.probs[chosen, 0])
                if adaptive_decay:
                    # track the shrink that works: grow after a full-size one, else keep the size found
                    decay = (
                        min(2 * decay, initial_decay)
                        if chosen == 0
                        else max(current_eps - proposed_eps, decay_floor)
                    )
            if new_top == target:
                adv, current_eps, top, prob, failures = proposal, proposed_eps, new_top, new_prob, 0
                trace.append((oracle.used(owner) - base, prob, current_eps <= eps))
                if current_eps <= eps:
                    break
                second = True
            else:
                failures += 1
                if failures >= decay_patience:
                    decay, failures = max(decay / 2, decay_floor), 0
                if adaptive_decay:
                    # Even the smallest shrink lost the target: look below the bracket next time, and
                    # count the loss against alpha, whose step alone may be what loses it.
                    decay = max(decay / 2**shrink_tries, decay_floor)
                    record(False)
                second = step_on_failure
            if second:
                proposal = constrain(adv + step, current_eps)
                new_top, new_prob = _read(oracle, proposal, owner)
                kept = new_top == target
                record(kept)
                if kept:
                    adv, top, prob = proposal, new_top, new_prob
                    trace.append((oracle.used(owner) - base, prob, False))
    except QueryBudgetExceeded:
        return finish(False, "budget", top)
    return BlackBoxPGDOutcome(
        adv, True, top, iterations, oracle.used(owner) - base, trace, current_eps, alpha, "success"
    )


def start_candidates(
    start_video: Tensor | Sequence[Tensor] | None, i: int, n: int, shape: torch.Size
) -> Tensor:
    """Candidate start videos ``[M,T,C,H,W]`` of attacked video ``i`` of ``n`` for a targeted attack that
    starts inside the target class (V-BAD's Alg. 1, vsquare): ``start_video`` is ``[T,C,H,W]``,
    ``[N,T,C,H,W]`` (one per video), ``[M,T,C,H,W]`` candidates when ``n == 1``, or a list of ``n``
    tensors; ``shape`` is the attacked batch's. The methods layer supplies them from the attacker's data.
    """
    if start_video is None:
        raise ValueError(
            "a targeted attack starts from a video of the target class (a top-1 oracle reveals nothing "
            "about the target until it is the top-1): pass start_video, videos of the target class from "
            "the attacker's own data"
        )
    if isinstance(start_video, Tensor):
        if start_video.dim() == 4:
            candidates = start_video.unsqueeze(0)
        elif start_video.dim() == 5 and start_video.shape[0] == n:
            candidates = start_video[i : i + 1]
        elif start_video.dim() == 5 and n == 1:
            candidates = start_video
        else:
            raise ValueError(
                f"start_video must be [T,C,H,W], [N={n},T,C,H,W] (one per video) or a list of [M_i,T,C,H,W] "
                f"candidates, got shape {tuple(start_video.shape)}"
            )
    elif (
        isinstance(start_video, (list, tuple))
        and len(start_video) == n
        and all(isinstance(s, Tensor) for s in start_video)
    ):
        candidates = start_video[i]
        candidates = candidates.unsqueeze(0) if candidates.dim() == 4 else candidates
    else:
        raise ValueError(
            f"start_video must be a tensor or a list of {n} tensors of target-class videos, "
            f"got {type(start_video).__name__}"
        )
    validate_video(candidates, "start_video")
    if candidates.shape[1:] != shape[1:]:
        raise ValueError(
            f"start_video frames must have shape {tuple(shape[1:])}, got {tuple(candidates.shape[1:])}"
        )
    return candidates
