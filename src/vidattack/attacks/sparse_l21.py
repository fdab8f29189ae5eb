"""Sparse adversarial perturbations for videos (Wei, Zhu, Yuan, Su, AAAI 2019): the white-box l2,1 attack.

The attack solves, with Adam, for one video or a batch of independent videos ``X [N,T,C,H,W]`` in [0, 1]:

    untargeted (Eq. 1 / 3):  min_E  lam * ||M . E||_{2,1} + l(1_y, J(X + M . E)),   l = -log(1 - p_y)
    targeted   (Eq. 4):      min_E  lam * ||M . E||_{2,1} + CE(J(X + M . E), y*)

where ``||E||_{2,1} = sum_t ||E_t||_2`` is the sum over frames of each frame's l2 norm ("Perturbation
Regularization": the l1 norm across frames drives whole frames to zero) and ``M`` is the temporal mask
(Eq. 3, section "Temporal Mask"): frames outside the mask carry exactly zero perturbation. With
``norm="l2"`` the regulariser is the l2 norm of the whole perturbation ``||M . E||_2``, the comparison the
paper draws in Fig. 4 and Fig. 8 (and the per-frame image attack it stands in for, "Datasets").

Choices the paper leaves open, documented here:

* **Initialisation**: every allowed value starts at ``init = 1e-4`` (section "Training": "initializing the
  perturbations with zeros will lead to NaN values ... we use 0.0001"). The frame norms are also computed
  in a form whose gradient is defined (zero) at an all-zero frame, so no NaN can appear later either.
* **Validity**: after each Adam step the perturbation is projected so that ``X + M . E`` stays in [0, 1]
  (and, when ``eps`` is given, into the L-inf ball of radius ``eps``; the paper has no such bound).
* **Stopping**: a fixed number of Adam ``steps`` (the paper does not state its stopping rule); the result
  is the *last successful* iterate (``keep="last"``; the final iterate when none succeeded). Keeping the
  successful iterate with the smallest regulariser (``keep="smallest"``) is available but can defeat the
  point: Adam's first, sign-like steps move every frame by the same amount and may reach the decision
  boundary with a dense perturbation of small total norm before the l2,1 term has emptied any frame
  (seen on a linear model with ``lam=0.1``: ``tests/test_sparse.py``; on the toy 3D CNN at ``lam=0.3`` both
  rules return the same sparsity, ``benchmarks/results_sparse.md``). ``keep="final"`` returns the final
  iterate whatever its success.
* **Step size**: the paper does not give Adam's learning rate; ``lr`` defaults to ``0.01`` in [0, 1] units
  (2.55 grey levels per step), decayed linearly to ``lr * lr_end`` so that frames pulled to zero by the
  l2,1 term settle near zero instead of oscillating with Adam's step size.

Tuning ``lam`` (the paper: "lambda is set to a constant, which is tuned in the training set"): a larger
``lam`` gives smaller, sparser perturbations and a lower fooling ratio; pick the largest ``lam`` that still
fools the training videos (:func:`tune_lambda` does that on a grid).

Temporal masks are given as strings (``"all"``, ``"first:K"``, ``"random:K"``, ``"frames:1,5,9"``, frame
indices 0-based), index lists or boolean tensors; see :func:`parse_frame_mask`. Universal perturbations
(Eq. 2) and the propagation experiments live in :mod:`vidattack.attacks.sparse_universal`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from vidattack.attacks.weight_search import fixed_or_searched
from vidattack.perturbation import build_mask, clip_to_valid, frame_mask_from_indices
from vidattack.result import AttackResult, TracePoint, is_adversarial, video_extras
from vidattack.threat import WhiteBox
from vidattack.video import validate_label_and_target, validate_video

__all__ = [
    "sparse_l21",
    "sparse_l21_fixed",
    "LAMBDA_GRID",
    "parse_frame_mask",
    "frame_mask_argument",
    "l21_norm",
    "frame_l2_norms",
    "regulariser",
    "sparse_loss",
    "tune_lambda",
    "DEFAULT_LAMBDA",
    "NEAR_ZERO",
]

#: Default weight of the regulariser, tuned on the test bed as the paper advises (section "Training": tuned
#: on the training set): the largest value of the grid 100 / 30 / 10 / 3 / 1 that fools all of 10 correctly
#: classified lrcn-synth *training* clips in 300 steps (``python benchmarks/bench_sparse.py lambda --grid
#: 100,30,10,3,1``, 2026-12-01: training fooling ratio 20 / 30 / 50 / 70 / 100%).
DEFAULT_LAMBDA = 1.0
#: The weights searched per video by default (largest first; see :func:`sparse_l21`).
LAMBDA_GRID: tuple[float, ...] = (DEFAULT_LAMBDA, 0.1, 0.01, 0.001)

#: A frame counts as (near-)zero when its largest absolute perturbation is below half an 8-bit grey level:
#: it disappears once the video is written as 8-bit frames.
NEAR_ZERO = 0.5 / 255

MaskSpec = str | Sequence[int] | Tensor | None


def frame_l2_norms(delta: Tensor) -> Tensor:
    """Per-frame l2 norms ``[N, T]`` of ``delta [N,T,C,H,W]``; zero (not NaN) gradient at a zero frame."""
    squares = delta.flatten(2).pow(2).sum(dim=2)
    nonzero = squares > 0
    # sqrt has an infinite derivative at 0; evaluate it on 1 there and mask the result instead.
    return torch.where(nonzero, torch.where(nonzero, squares, torch.ones_like(squares)).sqrt(), squares * 0)


def l21_norm(delta: Tensor) -> Tensor:
    """``||E||_{2,1} = sum_t ||E_t||_2`` per video (paper, "Perturbation Regularization"), ``float[N]``."""
    return frame_l2_norms(delta).sum(dim=1)


def _l2_norm(delta: Tensor) -> Tensor:
    squares = delta.flatten(1).pow(2).sum(dim=1)
    nonzero = squares > 0
    return torch.where(nonzero, torch.where(nonzero, squares, torch.ones_like(squares)).sqrt(), squares * 0)


def regulariser(delta: Tensor, norm: str) -> Tensor:
    """``||E||_{2,1}`` (``norm="l21"``) or ``||E||_2`` of the whole video (``norm="l2"``), ``float[N]``."""
    if norm == "l21":
        return l21_norm(delta)
    if norm == "l2":
        return _l2_norm(delta)
    raise ValueError(f"norm must be 'l21' or 'l2', got {norm!r}")


def sparse_loss(logits: Tensor, label: Tensor, target: Tensor | None) -> Tensor:
    """The paper's adversarial loss per video ``[N]`` (to minimise).

    Untargeted: ``-log(1 - p_y)`` (Eq. 1, after Carlini and Wagner), computed stably as
    ``logsumexp(z) - logsumexp_{j != y}(z)``. Targeted: cross-entropy to the target ``y*`` (Eq. 4).
    A ``target`` entry of ``-1`` makes that video untargeted.
    """
    untargeted = torch.logsumexp(logits, dim=1) - torch.logsumexp(
        logits.masked_fill(F.one_hot(label, logits.shape[1]).bool(), float("-inf")), dim=1
    )
    if target is None:
        return untargeted
    targeted = F.cross_entropy(logits, target.clamp(min=0), reduction="none")
    return torch.where(target >= 0, targeted, untargeted)


def parse_frame_mask(spec: MaskSpec, num_frames: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Turn a temporal-mask description into ``bool[T]`` (True = the frame may be perturbed; Eq. 3's ``M``).

    Args:
        spec: ``"all"`` or ``None`` (every frame); ``"first:K"`` (the first K frames, the paper's "top K"
            of Table 1); ``"last:K"``; ``"random:K"`` (K distinct frames drawn with ``generator``, Fig. 6);
            ``"frames:1,5,9"`` (explicit 0-based indices); a sequence of indices; or a ``[T]`` tensor
            (nonzero = allowed).
        num_frames: ``T``.
        generator: randomness for ``random:K``.

    Raises:
        ValueError: an unknown form, ``K`` outside ``[1, T]``, an index outside ``[0, T-1]``, an empty mask.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return torch.ones(num_frames, dtype=torch.bool)
    if isinstance(spec, Tensor):
        if spec.dim() != 1 or spec.shape[0] != num_frames:
            raise ValueError(f"mask tensor must have shape [T={num_frames}], got {tuple(spec.shape)}")
        mask = spec.detach().cpu() != 0
    elif isinstance(spec, str):
        kind, sep, value = (part.strip() for part in spec.strip().partition(":"))
        kind = kind.lower()
        if not sep or kind not in ("first", "last", "random", "frames"):
            raise ValueError(
                f"mask must be 'all', 'first:K', 'last:K', 'random:K' or 'frames:I,J,...', got {spec!r}"
            )
        if kind == "frames":
            try:
                indices = [int(part) for part in value.split(",") if part.strip()]
            except ValueError:
                raise ValueError(f"mask {spec!r}: frame indices must be integers") from None
            mask = frame_mask_from_indices(indices, num_frames)
        else:
            try:
                count = int(value)
            except ValueError:
                raise ValueError(f"mask {spec!r}: K must be an integer") from None
            if not 1 <= count <= num_frames:
                raise ValueError(f"mask {spec!r}: K must be in [1, {num_frames}] for {num_frames} frames")
            if kind == "first":
                chosen = range(count)
            elif kind == "last":
                chosen = range(num_frames - count, num_frames)
            else:
                chosen = torch.randperm(num_frames, generator=generator)[:count].tolist()
            mask = frame_mask_from_indices(chosen, num_frames)
    else:
        mask = frame_mask_from_indices(list(spec), num_frames)
    if not bool(mask.any()):
        raise ValueError(f"mask {spec!r} allows no frame: nothing could be perturbed")
    return mask


def sparse_l21(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float | None = None,
    lam: float | None = None,
    lam_grid: tuple[float, ...] = LAMBDA_GRID,
    norm: Literal["l21", "l2"] = "l21",
    mask: Tensor | Sequence[int] | None = None,
    steps: int = 300,
    lr: float = 0.01,
    lr_end: float = 0.05,
    init: float = 1e-4,
    keep: Literal["last", "smallest", "final"] = "last",
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Sparse l2,1 white-box attack (Wei et al. 2019, Eq. 1, 3, 4) on ``videos [N,T,C,H,W]`` in [0, 1],
    with the regulariser's weight searched per video unless ``lam`` is given.

    The right weight depends on the model (the paper tunes it on the training set): too strong, and the
    optimiser returns a near-zero perturbation that fools nothing. With ``lam=None`` (default) every video
    is attacked with the largest weight of ``lam_grid`` (:data:`LAMBDA_GRID`, starting at the test bed's
    tuned :data:`DEFAULT_LAMBDA`), and the videos not fooled are attacked again with the next weight, as
    Carlini and Wagner search their constant (:func:`~vidattack.attacks.weight_search.search_weight`);
    each video keeps the largest weight that fooled it (``extras["lam"]``). A given ``lam`` runs once with
    it. The other arguments are :func:`sparse_l21_fixed`'s.

    Returns:
        :class:`AttackResult`; every video's extras have a ``stop_reason``: ``success``,
        ``weight-too-strong`` (the smallest weight of the grid still failed) or ``steps`` (a given ``lam``
        did not fool it within ``steps``).
    """
    options = {"eps": eps, "norm": norm, "mask": mask, "steps": steps, "lr": lr, "lr_end": lr_end, "init": init,
               "keep": keep, "generator": generator}  # fmt: skip
    return fixed_or_searched(sparse_l21_fixed, model, videos, label, target, lam, lam_grid, "lam", **options)


def sparse_l21_fixed(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float | None = None,
    lam: float = DEFAULT_LAMBDA,
    norm: str = "l21",
    mask: Tensor | Sequence[int] | None = None,
    steps: int = 300,
    lr: float = 0.01,
    lr_end: float = 0.05,
    init: float = 1e-4,
    keep: str = "last",
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Sparse l2,1 white-box attack (Wei et al. 2019, Eq. 1, 3, 4) with one fixed weight ``lam``.

    Each video gets its own perturbation; the videos of a batch are optimised independently (Adam works
    per coordinate and the objective is a sum of per-video terms).

    Args:
        model: white-box access to the target (any video model; CNN+RNN is the paper's threat model).
        videos: clean clips ``[N,T,C,H,W]`` in [0, 1]; not modified.
        label: true classes ``[N]`` (or one int for all).
        target: target classes (Eq. 4, cross-entropy) or ``None`` for untargeted (Eq. 1, ``-log(1-p_y)``).
        eps: optional L-inf bound on the perturbation (not in the paper; ``None`` = unbounded as in Eq. 1).
        lam: weight of the regulariser (paper: a constant tuned on the training set; larger = sparser,
            smaller perturbations but a lower fooling ratio). Default tuned on the test bed
            (:data:`DEFAULT_LAMBDA`).
        norm: ``"l21"`` (the paper's ``||M . E||_{2,1}``) or ``"l2"`` (``||M . E||_2``, the comparison).
        mask: temporal mask ``M`` (Eq. 3), see :func:`parse_frame_mask`: ``"all"``, ``"first:K"``,
            ``"last:K"``, ``"random:K"`` (drawn once for the batch from ``generator``), ``"frames:1,5,9"``,
            an index list or a ``bool[T]`` tensor. Frames outside it stay exactly unperturbed.
        steps: Adam iterations (the paper does not give a number).
        lr: Adam's learning rate in [0, 1] units (not given in the paper), decayed linearly to
            ``lr * lr_end`` over the run.
        lr_end: final learning rate as a fraction of ``lr`` (1.0 = constant).
        init: initial value of every allowed perturbation entry (section "Training": 0.0001).
        keep: which iterate is returned: ``"last"`` (the last successful one: the optimiser's answer once
            it has converged, default), ``"smallest"`` (the successful one with the smallest regulariser)
            or ``"final"`` (the final iterate, successful or not). Without any success, the final iterate.
        generator: randomness for ``random:K`` masks (the optimisation itself is deterministic).

    Returns:
        :class:`AttackResult` with ``queries`` 0, ``iterations`` the step of the kept iterate, a trace of
        ``(step, objective, success)`` per video and ``extras``: ``frame_mask bool[T]``, ``reg float[N]``
        (the regulariser of the kept perturbation), ``l21 float[N]``, ``zero_frames`` / ``near_zero_frames``
        ``long[N]`` (frames with exactly zero / below half a grey level perturbation, all frames counted),
        ``lam``, ``norm``, ``mask`` (the spec as text), ``lr``, ``steps``.
    """
    start_time = time.perf_counter()
    if not isinstance(model, WhiteBox):
        raise ValueError(
            f"sparse_l21 needs white-box access: pass vidattack.WhiteBox(model), got {type(model).__name__}"
        )
    validate_video(videos, "videos")
    _check_options(lam=lam, norm=norm, steps=steps, lr=lr, lr_end=lr_end, init=init, keep=keep, eps=eps)
    n, t = videos.shape[:2]
    clean = videos.detach().clone()
    num_classes = model.num_classes(clean)
    labels, targets = validate_label_and_target(label, target, n, num_classes)
    labels, targets = labels.to(clean.device), None if targets is None else targets.to(clean.device)
    frame_mask = frame_mask_argument(mask, t)
    full_mask = build_mask(clean.shape, frame_mask=frame_mask, device=clean.device)
    assert full_mask is not None

    delta = _constrain(clean, torch.full_like(clean, init), full_mask, eps).requires_grad_(True)
    optimiser = torch.optim.Adam([delta], lr=lr)
    schedule = linear_decay(optimiser, steps, lr_end)

    best = clean.clone()
    best_reg = torch.full((n,), math.inf, device=clean.device)
    best_step = torch.zeros(n, dtype=torch.long)
    found = torch.zeros(n, dtype=torch.bool, device=clean.device)
    trace: list[list[TracePoint]] = [[] for _ in range(n)]
    for step in range(steps + 1):
        perturbation = delta * full_mask
        adversarial = clean + perturbation
        logits = model.logits(adversarial)
        reg = regulariser(perturbation, norm)
        objective = lam * reg + sparse_loss(logits, labels, targets)
        with torch.no_grad():
            success = is_adversarial(logits.argmax(dim=1), labels, targets)
            for i in range(n):
                trace[i].append((step, float(objective[i]), bool(success[i])))
            if keep == "smallest":
                better = success & (reg < best_reg)
            elif keep == "last":
                better = success
            else:
                better = torch.ones_like(success)
            if bool(better.any()):
                best[better] = adversarial.detach()[better]
                best_reg[better] = reg.detach()[better]
                best_step[better.cpu()] = step
            found |= success
        if step == steps:
            break
        optimiser.zero_grad(set_to_none=True)
        objective.sum().backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            delta.copy_(_constrain(clean, delta, full_mask, eps))
    with torch.no_grad():
        missing = ~found if keep != "final" else torch.zeros_like(found)
        if bool(missing.any()):
            last = clean + delta.detach() * full_mask
            best[missing] = last[missing]
            best_step[missing.cpu()] = steps
        kept = best - clean
        adv_label = model.predict(best)
        frame_max = kept.abs().flatten(2).amax(dim=2)
    return AttackResult(
        adversarial=best.detach(),
        success=is_adversarial(adv_label, labels, targets).cpu(),
        queries=torch.zeros(n, dtype=torch.long),
        iterations=best_step,
        label=labels.cpu(),
        target=None if targets is None else targets.cpu(),
        adv_label=adv_label.cpu(),
        seconds=time.perf_counter() - start_time,
        trace=trace,
        extras=video_extras(
            n,
            {"frame_mask": frame_mask, "lam": lam, "norm": norm, "mask": _mask_text(mask, frame_mask),
             "lr": lr, "steps": steps},
            reg=regulariser(kept, norm).cpu(),
            l21=l21_norm(kept).cpu(),
            zero_frames=(frame_max == 0).sum(dim=1).cpu(),
            near_zero_frames=(frame_max < NEAR_ZERO).sum(dim=1).cpu(),
        ),
        method="sparse",
    )


def tune_lambda(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    grid: Sequence[float] = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003),
    min_fooling: float = 1.0,
    **attack_kwargs: Any,
) -> tuple[float, list[tuple[float, float, float]]]:
    """The paper's tuning advice made a procedure: the largest ``lam`` on ``grid`` that fools a share of at
    least ``min_fooling`` of the (training) ``videos``.

    Args:
        grid: candidate values, tried from the largest down (stops at the first that is good enough).
        min_fooling: required fooling ratio on ``videos``.
        attack_kwargs: passed to :func:`sparse_l21` (``norm``, ``mask``, ``steps``, ...).

    Returns:
        ``(lam, rows)`` with ``rows`` = ``(lam, fooling ratio, mean MAP 0-255)`` for every value tried; the
        smallest value tried when none reaches ``min_fooling``.
    """
    rows: list[tuple[float, float, float]] = []
    ordered = sorted({float(value) for value in grid}, reverse=True)
    if not ordered:
        raise ValueError("grid must hold at least one lambda")
    for value in ordered:
        result = sparse_l21_fixed(model, videos, label, lam=value, **attack_kwargs)
        fooling = float(result.success.float().mean())
        mean_map = float((result.adversarial - videos).abs().mean() * 255)
        rows.append((value, fooling, mean_map))
        if fooling >= min_fooling:
            return value, rows
    return ordered[-1], rows


def linear_decay(optimiser: torch.optim.Optimizer, steps: int, lr_end: float) -> torch.optim.lr_scheduler.LambdaLR:
    """A schedule that lowers the learning rate linearly from ``lr`` to ``lr * lr_end`` over ``steps``
    calls of its ``step()`` and keeps it there (``lr_end`` 1.0: constant)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 1.0 - (1.0 - lr_end) * min(step, steps) / max(steps, 1)
    )


def _check_options(
    *, lam: float, norm: str, steps: int, lr: float, lr_end: float, init: float, keep: str, eps: float | None
) -> None:
    if not (isinstance(lam, (int, float)) and lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    if norm not in ("l21", "l2"):
        raise ValueError(f"norm must be 'l21' or 'l2', got {norm!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not 0 < lr_end <= 1:
        raise ValueError(f"lr_end must be in (0, 1], got {lr_end!r}")
    if not init > 0:
        raise ValueError(f"init must be > 0 (the l2,1 norm is not differentiable at zero), got {init!r}")
    if keep not in ("last", "smallest", "final"):
        raise ValueError(f"keep must be 'last', 'smallest' or 'final', got {keep!r}")
    if eps is not None and not eps > 0:
        raise ValueError(f"eps must be > 0 or None, got {eps!r}")


def frame_mask_argument(mask: Tensor | Sequence[int] | None, num_frames: int) -> Tensor:
    """The core's ``mask`` argument as ``bool[T]``: frame indices, a ``[T]`` tensor, or ``None`` (all).

    Descriptions such as ``"first:4"`` are the CLI's form: :func:`parse_frame_mask` reads them.
    """
    if isinstance(mask, str):
        raise ValueError(
            f"mask must be frame indices or a [T] tensor (None: every frame), got the description {mask!r}; "
            "read descriptions such as 'first:4' with parse_frame_mask(spec, num_frames)"
        )
    return parse_frame_mask(mask, num_frames)


def _constrain(clean: Tensor, delta: Tensor, mask: Tensor, eps: float | None) -> Tensor:
    delta = delta * mask
    if eps is not None:
        delta = delta.clamp(-eps, eps)
    return clip_to_valid(clean, delta).detach()


def _mask_text(spec: MaskSpec, frame_mask: Tensor) -> str:
    if isinstance(spec, str):
        return spec
    if spec is None:
        return "all"
    return "frames:" + ",".join(str(i) for i in frame_mask.nonzero().flatten().tolist())
