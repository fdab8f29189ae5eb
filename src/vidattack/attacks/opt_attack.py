"""Opt-attack for video (Cheng et al., ICLR 2019, "Query-efficient hard-label black-box attack: an
optimization-based approach"), the decision-based attack the Heuristic attack (Wei et al., AAAI 2020)
builds on.

The hard-label attack is recast as a real-valued problem over a search direction ``theta``:

    g(theta) = min { lam > 0 : F(x + lam * theta / ||theta||) is adversarial },

the (L2) distance from the clean video ``x`` to the decision boundary along ``theta``. ``g`` is evaluated
with top-1 labels only (:class:`~vidattack.threat.LabelOracle`) by a *fine-grained search* (steps of
``x (1 +/- alpha)`` from a starting distance until the decision flips) followed by a *binary search*
down to a tolerance (Cheng et al., Alg. 1). ``theta`` is then improved by zeroth-order descent: the
random gradient-free estimate of Eq. 1 (Heuristic paper; Gaussian ``u``, ``beta = 0.005``, averaged over
20 directions, ``beta`` divided by 10 when the estimate carries no information), reusing
:func:`vidattack.estimators.rgf_estimate`, and the update ``theta <- theta - eta * g_hat`` (Eq. 2) with
a backtracking line search on ``eta`` (Cheng et al., Alg. 2). The adversarial video is
``clip(x + g(theta) * theta)``.

Initial directions are ``theta = (x_hat - x) / ||x_hat - x||`` for videos ``x_hat`` of other classes
(untargeted) or of the target class (targeted); the one with the smallest ``g`` is kept (Heuristic
paper, Sec. "Methodology"; Cheng et al., Sec. 3). The candidate videos are an argument of the core
(``init_videos``); the methods layer takes them from the attacker's own data
(:mod:`vidattack.methods.attacker_data`).

Stopping rule (the same for every variant, also for :mod:`vidattack.attacks.heuristic`): the attack
stops as soon as the mean absolute perturbation (MAP, 0-255 scale) of ``clip(x + g theta) - x`` is at
most ``map_target``, or when the query budget is spent, or when ``beta`` has fallen below ``min_beta``
(no further progress). Success = adversarial and MAP <= ``map_target``. With ``converge=True`` (the
papers' own rule: Cheng et al. and Wei et al. run Opt-attack to convergence) the MAP does not stop the
attack, and ``map_target`` is only the success bound (default: none).

Queries are batched wherever the algorithm allows: the 20 searches of one gradient estimate run in
lock-step (one oracle call per search round for all of them), and so do the initial candidates.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidattack.attacks.decision_boundary import (
    DEFAULT_MAP_TARGET,
    DEFAULT_MAP_TARGET_TARGETED,
    run_direction_attack,
)
from vidattack.result import AttackResult
from vidattack.threat import LabelOracle

__all__ = ["opt_attack", "DEFAULT_MAP_TARGET", "DEFAULT_MAP_TARGET_TARGETED"]


def opt_attack(
    oracle: LabelOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    init_videos: Tensor | None = None,
    init_labels: Tensor | None = None,
    *,
    target: Tensor | int | list[int] | None = None,
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
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Opt-attack (Cheng et al. 2019) on ``videos [N,T,C,H,W]`` in [0, 1] through top-1 labels only.

    Args:
        oracle: the :class:`LabelOracle` (per-video budget; owner ``i`` for video ``i``).
        label: true classes ``[N]`` (or one int).
        init_videos: candidate videos ``[M,T,C,H,W]`` for the initial directions (e.g. training clips);
            ``None``: ``num_init`` uniform random videos (random directions).
        init_labels: their classes ``[M]``; untargeted attacks use those of other classes, targeted
            ones those of the target class. ``None``: every video is tried.
        target: target classes for a targeted attack, ``None`` for untargeted.
        map_target: stop once MAP (0-255) <= this; success needs it. Default
            :data:`DEFAULT_MAP_TARGET` (3.0) untargeted, :data:`DEFAULT_MAP_TARGET_TARGETED` (10.0)
            targeted (see module docstring: the stopping rule is ours, the papers give none).
        num_init: candidate videos tried for the initial direction (smallest ``g`` kept).
        samples: random directions per gradient estimate (Heuristic paper, Eq. 1: 20).
        beta: smoothing step of Eq. 1 (0.005, "following Cheng et al."); divided by 10 whenever the
            estimate carries no information or no step along it improves ``g``.
        eta: initial step size of Eq. 2, then adapted by the backtracking line search (Cheng et al.
            start at 0.2).
        min_beta: stop (converged) once ``beta`` falls below this.
        ratio: fine-grained search ratio alpha of Cheng et al.'s Alg. 1 (0.01).
        tolerance: binary-search width of ``g`` during the optimisation (Cheng et al.: 1e-5).
        init_rtol: relative binary-search width for the initial candidates (their ``g`` is refined
            by the first local search).
        max_iterations: cap on direction updates.
        converge: run to convergence (the papers' rule, for their MQ): the MAP no longer stops the
            attack; ``map_target`` is only the success bound (default none). ``False``: stop at
            ``map_target`` (the MAP-stop).
        generator: randomness (candidate choice, Gaussian directions).

    Returns:
        :class:`AttackResult`; ``queries`` are the oracle's counts; ``iterations`` the direction
        updates; ``trace[i]`` holds ``(queries, MAP, MAP <= target)`` after the initialisation and
        after each update; ``extras`` has ``g`` (final boundary distances), ``map_target``,
        ``init_queries`` and ``converged``.
    """
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
        method="opt",
        converge=converge,
    )
