"""Heuristic black-box attack on video recognition models (Wei et al., AAAI 2020), with Opt-attack.

The attack is Opt-attack (:mod:`vidattack.attacks.opt_attack`) whose initial direction is made sparse
before the zeroth-order optimisation starts (Alg. 2):

1. **Spatial sparsity** (Sec. "Heuristic Spatial Sparsity"): ``M <- SPATIAL(x, phi)`` keeps the most
   salient share ``phi`` of every frame of the clean video (spectral-residual saliency,
   :func:`vidattack.priors.saliency.saliency_mask`). Defaults ``phi = 0.6`` untargeted (Table 3) and
   ``0.8`` targeted (Table 5).
2. **Temporal sparsity** (Alg. 1, "Heuristic Temporal Sparsity"), for every candidate video ``x_hat``
   (other classes untargeted, target class targeted), with ``p = x_hat - x``:

   * frame importance: the top-1 label and probability of ``x + p M_t`` for every frame ``t`` (``M_t``
     = ``M`` without frame ``t``), through a :class:`~vidattack.threat.ScoreOracle`
     (:func:`vidattack.priors.frame_importance.frame_importance`); frames whose removal keeps the video
     adversarial are sorted by that probability, largest first (least important first);
   * greedy removal in that order: frame ``t`` is removed (``M_hat = M`` without ``t``,
     ``theta = p M_hat / ||p M_hat||``) when ``x + p M_hat`` is still adversarial and either
     ``MAP(g(theta) theta) <= omega`` or that MAP is smaller than the current one (Alg. 1 lines
     14-20; the second branch keeps removing frames while it lowers the MAP even above ``omega``).
     Defaults ``omega = 3`` untargeted (Table 2), ``30`` targeted (Table 4), 0-255 scale.

   The candidate whose final direction has the smallest ``g`` is kept (Sec. "Methodology").
3. **Optimisation** (Alg. 2 lines 5-8): Opt-attack's updates with the Gaussian directions ``u``
   restricted to the mask ``M`` ("the computed perturbations are only added to the masked regions"),
   so removed frames and non-salient pixels carry exactly zero perturbation throughout.

Queries. The attack sees the model through two oracles over one model: a ``ScoreOracle`` for the frame
importance (top-1 label + probability, the paper's threat model) and a ``LabelOracle`` for everything
else. The reported queries are their sum and the budget covers the sum: build them with
:func:`shared_budget_oracles`, which makes the two oracles share one per-video counter (so the oracle
that would take the *total* past the budget refuses). A single ``ScoreOracle`` may also be passed (its
top-1 label then serves as the label oracle).

Efficiency in Alg. 1: whether ``MAP(g(theta) theta) <= level`` only needs one label query at the
distance where the MAP equals ``level`` (MAP grows along a ray), so a rejected frame costs at most two
queries; ``g`` itself is bisected only for accepted frames, to a relative width ``init_rtol``. All
candidates run Alg. 1 in lock-step, one batched oracle call per step.

Stopping rule (same for the three variants compared in Table 6 -- ``opt``, ``heuristic spatial=false``
(Temp.) and ``heuristic`` (Temp. + Spat.)): stop when MAP <= ``map_target`` or the budget is spent;
success = adversarial and MAP <= ``map_target`` (see :mod:`vidattack.attacks.opt_attack`).
``converge=True`` runs to convergence instead (the paper's rule, for its MQ); ``map_target`` is then
only the success bound.

Replacing Alg. 1: ``frame_selector`` (a :data:`FrameSelector`) chooses the frames instead of the
greedy removal; the rest (spatial mask, candidates, optimisation on the mask) is unchanged. SVA_opt
(Wei, Yan, Li, IJCV 2022, Sec. 4.5.3, :mod:`vidattack.attacks.sva_opt`) passes its RL agent here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from vidattack.attacks.decision_boundary import (
    DirectionState,
    RaySearch,
    _bisect,
    _unit,
    bracket_distance,
    initial_directions,
    lambda_for_map,
    map_255_along,
    run_direction_attack,
)
from vidattack.priors.frame_importance import frame_importance, removal_order
from vidattack.priors.saliency import saliency_mask
from vidattack.result import AttackResult
from vidattack.threat import LabelOracle, ScoreOracle

__all__ = [
    "heuristic",
    "FrameSelector",
    "shared_budget_oracles",
    "HeuristicOracles",
    "temporal_selection",
]

#: Paper defaults (Sec. "Parameter Setting"): omega (0-255) and phi, untargeted / targeted.
OMEGA_UNTARGETED, OMEGA_TARGETED = 3.0, 30.0
PHI_UNTARGETED, PHI_TARGETED = 0.6, 0.8


#: Chooses the frames the perturbation may use, in place of Alg. 1: called as
#: ``selector(search, candidates, region, owner)`` with the video's :class:`RaySearch` (label queries
#: charged to the video's budget), the candidate videos ``[K,T,C,H,W]``, the spatial region
#: ``[T,1,H,W]`` (all ones without ``spatial``) and the video's index; returns ``bool [T]``.
FrameSelector = Callable[[RaySearch, Tensor, Tensor, int], Tensor]


class HeuristicOracles(NamedTuple):
    """The two views of one model the Heuristic attack uses; built by :func:`shared_budget_oracles`."""

    score: ScoreOracle
    label: LabelOracle


def shared_budget_oracles(
    model: Callable[[Tensor], Tensor], *, budget: int | None = None, batch_size: int = 64
) -> HeuristicOracles:
    """A top-1 :class:`ScoreOracle` and a :class:`LabelOracle` over ``model`` sharing one query counter.

    Both oracles charge the same per-video counter (``queries_by_owner``) against the same ``budget``,
    so ``budget`` bounds the *sum* of score and label queries and either oracle's ``used(i)`` is that sum.
    """
    score = ScoreOracle(model, top_k=1, budget=budget, batch_size=batch_size)
    label = LabelOracle(model, budget=budget, batch_size=batch_size)
    label.queries_by_owner = score.queries_by_owner
    return HeuristicOracles(score, label)


class _Access(NamedTuple):
    score: ScoreOracle | None
    labels: Callable[[int], Callable[[Tensor], Tensor]]
    used: Callable[[int], int]
    remaining: Callable[[int], int | None]


def _split_oracles(oracle: Any, temporal: bool) -> _Access:
    """How the attack reaches the model: score oracle (or None), label function, query count, budget left."""
    if isinstance(oracle, (tuple, list)) and len(oracle) == 2:
        first, second = oracle
        score = first if isinstance(first, ScoreOracle) else second
        label = second if score is first else first
        if not isinstance(score, ScoreOracle) or not isinstance(label, LabelOracle):
            raise ValueError(
                "oracle pair must hold one ScoreOracle and one LabelOracle (see shared_budget_oracles)"
            )
        shared = score.queries_by_owner is label.queries_by_owner
        if not shared and (score.budget is not None or label.budget is not None):
            raise ValueError(
                "the ScoreOracle and LabelOracle must share one query budget: build them with "
                "vidattack.attacks.heuristic.shared_budget_oracles(model, budget=...)"
            )

        def used(owner: int) -> int:
            return label.used(owner) if shared else label.used(owner) + score.used(owner)

        return _Access(
            score, lambda owner: lambda videos: label.query(videos, owner=owner), used, label.remaining
        )
    if isinstance(oracle, ScoreOracle):
        return _Access(
            oracle,
            lambda owner: lambda videos: oracle.query(videos, owner=owner).labels[:, 0],
            oracle.used,
            oracle.remaining,
        )
    if isinstance(oracle, LabelOracle):
        if temporal:
            raise ValueError(
                "the temporal heuristic reads top-1 probabilities: pass a ScoreOracle or "
                "shared_budget_oracles(model, budget=...) (a LabelOracle alone only allows temporal=False)"
            )
        return _Access(
            None,
            lambda owner: lambda videos: oracle.query(videos, owner=owner),
            oracle.used,
            oracle.remaining,
        )
    raise ValueError(
        "oracle must be HeuristicOracles (ScoreOracle, LabelOracle), a ScoreOracle or a LabelOracle, "
        f"got {type(oracle).__name__}"
    )


class TemporalSelection(NamedTuple):
    """Alg. 1's outcome for ``K`` candidates: ``frames bool[K,T]`` kept, ``thetas [K,...]`` unit
    directions, ``g [K]`` (``inf``: no adversarial direction), ``labels [K]`` at ``g``, ``maps [K]``."""

    frames: Tensor
    thetas: Tensor
    g: Tensor
    labels: Tensor
    maps: Tensor


def temporal_selection(
    search: RaySearch,
    score: ScoreOracle,
    perturbations: Tensor,
    *,
    omega: float,
    owner: int,
    tolerance: float = 1e-5,
    rtol: float = 1e-3,
) -> TemporalSelection:
    """Heuristic temporal selection (Alg. 1), in lock-step, for candidates ``p_k M [K,T,C,H,W]``.

    Frame importance costs ``K * T`` score queries; then every removal step costs one label query per
    candidate (is ``x + p M_hat`` adversarial?), at most one more (is the boundary below the distance
    where the MAP reaches ``max(omega, current MAP)``?) and a bisection of ``g`` for accepted removals.
    At least one frame is always kept.
    """
    clean = search.clean
    count, num_frames = perturbations.shape[:2]
    target = None if search.target is None else int(search.target[0])
    importance = frame_importance(score, clean, perturbations, int(search.label[0]), target, owner=owner)
    orders = removal_order(importance)

    norms = perturbations.flatten(1).norm(dim=1).double().cpu()
    thetas = _unit(perturbations)
    g, labels = bracket_distance(search, thetas, norms, tolerance=tolerance, rtol=rtol)
    g = torch.where(norms > 0, g, torch.full_like(g, math.inf))
    maps = map_255_along(clean, thetas, g)
    frames = torch.ones(count, num_frames, dtype=torch.bool)
    valid = torch.isfinite(g)
    for step in range(num_frames):
        rows = [
            k for k in range(count) if bool(valid[k]) and step < len(orders[k]) and int(frames[k].sum()) > 1
        ]
        if not rows:
            break
        index = torch.tensor(rows)
        proposal = frames[index].clone()
        proposal[torch.arange(len(rows)), torch.tensor([orders[k][step] for k in rows])] = False
        trial = perturbations[index] * proposal.to(perturbations.dtype).reshape(
            len(rows), num_frames, 1, 1, 1
        ).to(perturbations.device)
        trial_norms = trial.flatten(1).norm(dim=1).double().cpu()
        nonzero = trial_norms > 0
        trial_thetas = _unit(trial)
        adv, got_labels = search.ask(trial_thetas, trial_norms)  # F(x + p M_hat), Alg. 1 line 14
        adv &= nonzero
        level = torch.clamp(maps[index], min=omega)
        limit = lambda_for_map(clean, trial_thetas, level, trial_norms)
        hi = trial_norms.clone()
        need = (adv & (limit < trial_norms)).nonzero().flatten()
        if need.numel():
            below, below_labels = search.ask(trial_thetas[need], limit[need])
            adv[need] = below
            hi[need] = limit[need]
            got_labels[need] = below_labels
        accepted = adv.nonzero().flatten()
        if accepted.numel() == 0:
            continue
        new_g, new_labels = _bisect(
            search,
            trial_thetas[accepted],
            torch.zeros(accepted.numel(), dtype=torch.float64),
            hi[accepted],
            got_labels[accepted],
            tolerance=tolerance,
            rtol=rtol,
        )
        new_maps = map_255_along(clean, trial_thetas[accepted], new_g)
        for j, row in enumerate(accepted.tolist()):
            k = rows[row]
            if float(new_maps[j]) <= omega or float(new_maps[j]) < float(maps[k]):
                frames[k] = proposal[row]
                thetas[k] = trial_thetas[row]
                g[k], labels[k], maps[k] = new_g[j], new_labels[j], new_maps[j]
    return TemporalSelection(frames, thetas, g, labels, maps)


def heuristic(
    oracle: HeuristicOracles | ScoreOracle | LabelOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    init_videos: Tensor | None = None,
    init_labels: Tensor | None = None,
    *,
    target: Tensor | int | list[int] | None = None,
    spatial: bool = True,
    temporal: bool = True,
    omega: float | None = None,
    phi: float | None = None,
    map_target: float | None = None,
    num_init: int = 10,
    samples: int = 20,
    beta: float = 0.005,
    eta: float = 0.2,
    min_beta: float = 1e-4,
    ratio: float = 0.01,
    tolerance: float = 1e-5,
    init_rtol: float = 1e-3,
    max_iterations: int = 100_000,
    converge: bool = False,
    frame_selector: FrameSelector | None = None,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Heuristic black-box attack (Wei et al. 2020, Alg. 2) on ``videos [N,T,C,H,W]`` in [0, 1].

    Args:
        oracle: :func:`shared_budget_oracles` ``(ScoreOracle, LabelOracle)`` sharing one budget, or one
            ``ScoreOracle`` (top-1 label and probability), or a ``LabelOracle`` when ``temporal=False``.
        label: true classes ``[N]`` (or one int).
        init_videos, init_labels: candidate videos ``[M,T,C,H,W]`` and their classes for the initial
            directions (other classes untargeted, the target class targeted); see
            :func:`vidattack.attacks.opt_attack.opt_attack`.
        target: target classes, or ``None`` for untargeted.
        spatial: use the saliency mask (Temp. + Spat. of Table 6); ``False``: Temp. only.
        temporal: run Alg. 1 (``False`` with ``spatial=False`` is plain Opt-attack).
        omega: MAP bound of Alg. 1 (0-255); default 3 untargeted, 30 targeted (Sec. "Parameter
            Setting", Tables 2 and 4). ``inf`` removes every frame that keeps the video adversarial.
        phi: salient share of each frame, in (0, 1]; default 0.6 untargeted, 0.8 targeted (Tables 3, 5).
        map_target, num_init, samples, beta, eta, min_beta, ratio, tolerance, init_rtol, max_iterations,
        converge:
            as in :func:`~vidattack.attacks.opt_attack.opt_attack` (``samples = 20``, ``beta = 0.005``:
            Eq. 1 and the text below it).
        frame_selector: chooses the frames instead of Alg. 1 (:data:`FrameSelector`; Alg. 1 is then not
            run, whatever ``temporal`` says, and a ``LabelOracle`` suffices); ``None``: Alg. 1.
        generator: randomness (candidate choice, Gaussian directions).

    Returns:
        :class:`AttackResult` whose ``queries`` are score + label queries; ``extras``: ``mask``
        (``float [N,T,1,H,W]``, the region the perturbation may use -- pass it to
        :func:`vidattack.metrics.map_star_255` for the paper's MAP*), ``frames_kept`` ``[N]``,
        ``importance_queries`` ``[N]``, ``init_queries`` ``[N]``, ``selector_queries`` ``[N]`` (queries
        spent by ``frame_selector``), ``omega``, ``phi``, ``map_target``, ``g``, ``converged``.
    """
    targeted = target is not None
    omega = (OMEGA_TARGETED if targeted else OMEGA_UNTARGETED) if omega is None else float(omega)
    phi = (PHI_TARGETED if targeted else PHI_UNTARGETED) if phi is None else float(phi)
    if not omega >= 0:
        raise ValueError(f"omega must be >= 0 (0-255 scale, inf allowed), got {omega}")
    if not 0 < phi <= 1:
        raise ValueError(f"phi must be in (0, 1], got {phi}")
    alg1 = temporal and frame_selector is None
    access = _split_oracles(oracle, alg1)
    score = access.score

    def init(
        search: RaySearch,
        candidates: Tensor,
        *,
        owner: int,
        info: dict,
        used: Callable[[], int],
        generator: Any,
    ) -> DirectionState | None:
        del generator
        clean = search.clean
        num_frames, channels, height, width = clean.shape
        region = torch.ones(num_frames, 1, height, width, dtype=clean.dtype, device=clean.device)
        if spatial:
            region = saliency_mask(clean, phi).unsqueeze(1).to(clean.dtype)
        perturbations = (candidates - clean.unsqueeze(0)) * region.unsqueeze(0)
        if alg1:
            assert score is not None  # guaranteed by _split_oracles
            before = used()
            selection = temporal_selection(
                search, score, perturbations, omega=omega, owner=owner, tolerance=tolerance, rtol=init_rtol
            )
            info["importance_queries"] = perturbations.shape[0] * num_frames
            info["alg1_queries"] = used() - before
            if not bool(torch.isfinite(selection.g).any()):
                return None
            best = int(selection.g.argmin())
            frames = selection.frames[best].to(clean.device, clean.dtype).reshape(num_frames, 1, 1, 1)
            region = region * frames
            theta, g, adv_label = (
                selection.thetas[best],
                float(selection.g[best]),
                int(selection.labels[best]),
            )
        else:
            if frame_selector is not None:
                before = used()
                frames = frame_selector(search, candidates, region, owner)
                info["selector_queries"] = used() - before
                region = region * torch.as_tensor(frames).reshape(num_frames, 1, 1, 1).to(region)
            thetas, dist, cand_labels = initial_directions(
                search, candidates, tolerance=tolerance, rtol=init_rtol, mask=region
            )
            if not bool(torch.isfinite(dist).any()):
                return None
            best = int(dist.argmin())
            theta, g, adv_label = thetas[best], float(dist[best]), int(cand_labels[best])
        info["region"] = region
        mask = region.expand(num_frames, channels, height, width).clone()
        return DirectionState(theta * mask, g, adv_label, mask=mask)

    def extras(states: list[DirectionState | None], infos: list[dict]) -> tuple[dict, dict]:
        masks = []
        for state, info in zip(states, infos, strict=True):
            region = info.get("region")
            if region is None or state is None:
                region = torch.ones_like(videos[0, :, :1])
            masks.append(region)
        shared = {
            "omega": omega, "phi": phi if spatial else 1.0, "spatial": spatial, "temporal": temporal,
            "frame_selector": frame_selector is not None,
        }  # fmt: skip
        return shared, {
            "mask": masks,
            "frames_kept": [int((m.flatten(1) != 0).any(dim=1).sum()) for m in masks],
            "importance_queries": [int(info.get("importance_queries", 0)) for info in infos],
            "alg1_queries": [int(info.get("alg1_queries", 0)) for info in infos],
            "selector_queries": [int(info.get("selector_queries", 0)) for info in infos],
        }

    method = "heuristic" if (temporal or spatial) else "opt"
    return run_direction_attack(
        oracle,
        videos,
        label,
        init_videos,
        init_labels,
        target=target,
        map_target=map_target,
        num_init=num_init,
        samples=samples,
        beta=beta,
        eta=eta,
        min_beta=min_beta,
        ratio=ratio,
        tolerance=tolerance,
        init_rtol=init_rtol,
        max_iterations=max_iterations,
        generator=generator,
        method=method,
        labels_function=access.labels,
        used_function=access.used,
        remaining_function=access.remaining,
        init_function=init,
        extras_function=extras,
        converge=converge,
    )
