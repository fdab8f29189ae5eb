"""Flickering adversarial attack (Pony, Naeh & Mannor, "Over-the-Air Adversarial Flickering Attacks
against Video Recognition Networks", CVPR 2021): the single-video core and the shared building blocks.

The perturbation (Sec. 3.2) is one RGB offset per frame, ``delta [T, 3]``, broadcast over every pixel of
the frame: ``adv = clip(X + delta[t, c], 0, 1)`` (Eq. 2). It is found by minimising (Eq. 1)

    lambda * (beta1 * D1(delta) + beta2 * D2(delta)) + mean_n l(F(X_n + delta), t_n)

with the margin loss ``l`` of Eq. 3-4 / Appendix A (:func:`flicker_margin_loss`), the thickness
regulariser ``D1`` and the roughness regulariser ``D2`` of Eq. 9 (:func:`thickness_reg`,
:func:`roughness_reg`), using Adam with learning rate 1e-3 (Appendix B).

This module holds the pieces every flicker mode shares (broadcast, roll, loss, regularisers, a
row-maskable Adam, metrics on ``delta``) and :func:`flicker`, the per-video attack registered as
``flicker``. Class, universal and time-invariant perturbations, random baselines and transfer are in
:mod:`vidattack.attacks.flicker_universal`; the over-the-air channel in :mod:`vidattack.physical`.

Value range: videos live in [0, 1], so a share of the value range (the paper's ``l_inf[%] / 100``,
thickness and roughness in %) is the same number as an offset in [0, 1] units. The paper's I3D used
[-1, 1]; its offsets are twice ours for the same share of the range, so its D1/D2 values are 4x ours.
"""

from __future__ import annotations

import math
import time
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from vidattack.attacks.weight_search import fixed_or_searched
from vidattack.result import AttackResult, TracePoint, is_adversarial, video_extras
from vidattack.threat import WhiteBox
from vidattack.video import validate_label_and_target, validate_video

__all__ = [
    "flicker",
    "flicker_fixed",
    "LAMBDA_GRID",
    "apply_flicker",
    "roll_offsets",
    "flicker_margin_loss",
    "thickness_reg",
    "roughness_reg",
    "delta_thickness",
    "delta_roughness",
    "MaskedAdam",
    "validate_offsets",
]


# --------------------------------------------------------------------------------------------------
# The perturbation
# --------------------------------------------------------------------------------------------------


def validate_offsets(offsets: object, frames: int | None = None, name: str = "offsets") -> Tensor:
    """Check a flicker perturbation ``[T, C]`` or ``[N, T, C]`` (finite floats) and return it unchanged."""
    if not isinstance(offsets, Tensor) or not offsets.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor [T, 3] or [N, T, 3], got {type(offsets).__name__}"
        )
    if offsets.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape [T, 3] or [N, T, 3], got {tuple(offsets.shape)}")
    if frames is not None and offsets.shape[-2] != frames:
        raise ValueError(f"{name} must have T={frames} frames (axis -2), got shape {tuple(offsets.shape)}")
    if not bool(torch.isfinite(offsets).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return offsets


def apply_flicker(videos: Tensor, offsets: Tensor) -> Tensor:
    """``clip(videos + offsets, 0, 1)``: one offset per frame and channel on every pixel (Sec. 3.2, Eq. 2).

    Args:
        videos: ``[N, T, C, H, W]`` in [0, 1].
        offsets: ``[T, C]`` (one perturbation for all videos) or ``[N, T, C]`` (one per video).

    Returns:
        ``[N, T, C, H, W]`` in [0, 1]; differentiable with respect to ``offsets``.
    """
    return (videos + offsets[..., None, None]).clamp(0.0, 1.0)


def roll_offsets(offsets: Tensor, shift: int | Tensor) -> Tensor:
    """The paper's ``Roll(delta, tau)`` (Eq. 6): cyclic shift along time, ``out[t] = delta[(t + tau) mod T]``.

    Args:
        offsets: ``[T, C]`` or ``[N, T, C]``.
        shift: one int, or ``long[N]`` (one shift per row of a ``[N, T, C]`` tensor, or per copy of a
            ``[T, C]`` tensor, which is then expanded to ``[N, T, C]``).
    """
    if isinstance(shift, int):
        return torch.roll(offsets, shifts=-shift, dims=-2)
    shift = shift.reshape(-1).to(offsets.device).long()
    frames = offsets.shape[-2]
    if offsets.dim() == 2:
        offsets = offsets.unsqueeze(0).expand(shift.numel(), *offsets.shape)
    index = (torch.arange(frames, device=offsets.device).unsqueeze(0) + shift.unsqueeze(1)) % frames  # [N, T]
    return offsets.gather(1, index.unsqueeze(-1).expand(-1, -1, offsets.shape[-1]))


# --------------------------------------------------------------------------------------------------
# Loss and regularisers
# --------------------------------------------------------------------------------------------------


#: Weights of the regularisers searched per video by default (largest first: the paper's 1, Appendix B).
LAMBDA_GRID: tuple[float, ...] = (1.0, 0.1, 0.01)


def flicker_margin_loss(
    logits: Tensor,
    label: Tensor,
    target: Tensor | None = None,
    *,
    margin: float = 0.05,
    space: str = "probs",
    saturation: float = 1e-3,
) -> Tensor:
    """The modified C&W margin loss of Eq. 3-4 / Appendix A (Eq. 12-13), per video ``[N]``.

    ``l = max(0, min(l_m^2 / m, l_m))`` with, untargeted, ``l_m = y_t - max_{i != t} y_i + m`` (``t`` the
    true class) and, targeted, ``l_m = max_{i != t} y_i - y_t + m`` (``t`` the target). It is 0 once the
    goal holds with margin ``m``; near the boundary the quadratic branch keeps the gap at about ``m``
    without overshoot (Appendix A, C.1).

    Args:
        logits: ``[N, K]``.
        label: true classes ``long[N]``.
        target: target classes ``long[N]`` (``-1`` rows are untargeted) or ``None``.
        margin: ``m`` in probability units (paper: 0.05).
        space: ``"probs"`` (the paper's default, ``y`` = softmax) or ``"logits"``. With logits the margin
            stays a probability gap, "normalised at each iteration" (Appendix A): ``m`` is converted to the
            logit gap that separates the two competing classes by ``m`` in probability given their current
            (detached) joint mass ``s``: ``m_logit = log((s + m) / (s - m))``.
        saturation: with ``space="probs"``, a video whose softmax is saturated (untargeted: true-class
            probability above ``1 - saturation``; targeted: target probability below ``saturation``) has a
            vanishing probability gradient (exactly 0 in float32 for confident models), so for that video
            and that call the logit form is used instead (Appendix A's remedy). It switches back to
            probabilities as soon as the video leaves saturation. 0 disables the fallback.
    """
    if space not in ("probs", "logits"):
        raise ValueError(f"space must be 'probs' or 'logits', got {space!r}")
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    label = label.to(logits.device)
    if target is None:
        reference = label
        sign = torch.ones(logits.shape[0], device=logits.device, dtype=logits.dtype)
        targeted = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    else:
        target = target.to(logits.device)
        targeted = target >= 0
        reference = torch.where(targeted, target, label)
        sign = torch.where(targeted, -1.0, 1.0).to(logits.dtype)
    probs = torch.softmax(logits, dim=1)
    others_mask = F.one_hot(reference, logits.shape[1]).bool()
    other_index = logits.masked_fill(others_mask, float("-inf")).argmax(dim=1)

    def pick(values: Tensor, index: Tensor) -> Tensor:
        return values.gather(1, index.reshape(-1, 1)).squeeze(1)

    def hinge(lm: Tensor, m: Tensor) -> Tensor:
        return torch.clamp(torch.minimum(lm * lm / m, lm), min=0.0)

    with torch.no_grad():
        p_ref, p_other = pick(probs, reference), pick(probs, other_index)
        mass = (p_ref + p_other).clamp(min=margin * (1 + 1e-3) + 1e-6)
        m_logit = torch.log((mass + margin) / (mass - margin))
    logit_loss = hinge(sign * (pick(logits, reference) - pick(logits, other_index)) + m_logit, m_logit)
    if space == "logits":
        return logit_loss
    m = torch.full_like(p_ref, margin)
    prob_loss = hinge(sign * (pick(probs, reference) - pick(probs, other_index)) + m, m)
    if saturation <= 0:
        return prob_loss
    saturated = torch.where(targeted, p_ref < saturation, p_ref > 1 - saturation)
    return torch.where(saturated, logit_loss, prob_loss)


def thickness_reg(offsets: Tensor) -> Tensor:
    """``D1(delta) = ||delta||_2^2 / (3T)`` (Sec. 3.4.1) of ``[T, C]`` (scalar) or ``[N, T, C]`` (``[N]``)."""
    return offsets.pow(2).mean(dim=(-2, -1))


def roughness_reg(offsets: Tensor) -> Tensor:
    """``D2(delta)`` of Eq. 9: mean squared cyclic first plus second temporal difference (Eq. 7-8).

    ``d/dt delta = Roll(delta, 1) - delta`` and ``d2/dt2 delta = Roll(delta, -1) - 2 delta + Roll(delta, 1)``,
    both cyclic (the pattern is played in a loop), each squared and averaged over ``3T`` values.
    """
    ahead = roll_offsets(offsets, 1)
    behind = roll_offsets(offsets, -1)
    first = ahead - offsets
    second = behind - 2 * offsets + ahead
    return first.pow(2).mean(dim=(-2, -1)) + second.pow(2).mean(dim=(-2, -1))


def delta_thickness(offsets: Tensor) -> Tensor:
    """Thickness of Eq. 10 in % of the [0, 1] range: ``100 * ||delta||_1 / (3T)`` (``[N]`` or scalar)."""
    return offsets.detach().abs().mean(dim=(-2, -1)) * 100.0


def delta_roughness(offsets: Tensor) -> Tensor:
    """Roughness of Eq. 11 in % of the range: ``100 * ||Roll(delta, 1) - delta||_1 / (3T)`` (cyclic)."""
    offsets = offsets.detach()
    return (roll_offsets(offsets, 1) - offsets).abs().mean(dim=(-2, -1)) * 100.0


class MaskedAdam:
    """Adam (Kingma & Ba) on one tensor whose rows can be frozen: frozen rows keep value *and* moments.

    ``torch.optim.Adam`` would keep moving a frozen video's offsets through its momentum; attacking a
    batch of videos independently needs rows that stop exactly when their own stopping rule fires.
    """

    def __init__(
        self, param: Tensor, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.steps = torch.zeros(param.shape[0], device=param.device)

    @torch.no_grad()
    def step(self, grad: Tensor, active: Tensor | None = None) -> None:
        """Update ``param`` in place from ``grad``; only rows where ``active [rows]`` is True move."""
        b1, b2 = self.betas
        rows = (
            torch.ones(self.param.shape[0], dtype=torch.bool, device=self.param.device)
            if active is None
            else active
        )
        shape = (-1,) + (1,) * (self.param.dim() - 1)
        keep = rows.reshape(shape)
        self.steps += rows.float()
        m = b1 * self.m + (1 - b1) * grad
        v = b2 * self.v + (1 - b2) * grad * grad
        self.m = torch.where(keep, m, self.m)
        self.v = torch.where(keep, v, self.v)
        count = self.steps.clamp(min=1).reshape(shape)
        m_hat = self.m / (1 - b1**count)
        v_hat = self.v / (1 - b2**count)
        update = self.lr * m_hat / (v_hat.sqrt() + self.eps)
        self.param.sub_(torch.where(keep, update, torch.zeros_like(update)))


# --------------------------------------------------------------------------------------------------
# Single-video attack
# --------------------------------------------------------------------------------------------------


def flicker(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float | None = None,
    steps: int = 1000,
    lr: float = 1e-3,
    lam: float | None = None,
    lam_grid: tuple[float, ...] = LAMBDA_GRID,
    beta1: float = 0.5,
    beta2: float = 0.5,
    margin: float = 0.05,
    loss_space: Literal["probs", "logits"] = "probs",
    patience: int = 200,
    min_improvement: float = 1e-3,
    init_scale: float = 0.0,
    select: Literal["thickness", "regularizer"] = "thickness",
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Flickering attack (:func:`flicker_fixed`) with ``lam`` (Eq. 1's weight of the regularisers)
    searched per video unless given.

    The paper's ``lam = 1`` (Appendix B) suits its models; on another model the regularisers can outweigh
    the margin loss, and the attack returns a tiny flicker that fools nothing. With ``lam=None`` (default)
    each video is attacked with the largest weight of ``lam_grid`` (:data:`LAMBDA_GRID`, starting at the
    paper's 1) and only the videos not fooled again with the next, keeping per video the largest weight
    that fooled it (:func:`~vidattack.attacks.weight_search.search_weight`, as Carlini and Wagner search
    their constant). Every video's extras say why it stopped (``stop_reason``: ``success``,
    ``weight-too-strong``, or ``steps`` for a given ``lam``).
    """
    options = {"eps": eps, "steps": steps, "lr": lr, "beta1": beta1, "beta2": beta2, "margin": margin,
               "loss_space": loss_space, "patience": patience, "min_improvement": min_improvement,
               "init_scale": init_scale, "select": select, "generator": generator}  # fmt: skip
    return fixed_or_searched(flicker_fixed, model, videos, label, target, lam, lam_grid, "lam", **options)


def flicker_fixed(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float | None = None,
    steps: int = 1000,
    lr: float = 1e-3,
    lam: float = 1.0,
    beta1: float = 0.5,
    beta2: float = 0.5,
    margin: float = 0.05,
    loss_space: str = "probs",
    patience: int = 200,
    min_improvement: float = 1e-3,
    init_scale: float = 0.0,
    select: str = "thickness",
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Flickering attack on each of ``videos [N,T,C,H,W]`` separately, one ``delta [T, C]`` each (Sec. 4.3),
    with one fixed ``lam``.

    Every video gets its own per-frame RGB offsets, optimised with Adam on Eq. 1 (N = 1 per video):
    ``lam * (beta1 * D1 + beta2 * D2) + margin_loss``. Following Appendix C.1 the adversarial loss first
    pushes the top class over; once the gap exceeds ``margin`` the loss is 0 and the regularisers shrink
    the perturbation, and the quadratic branch keeps the gap near ``margin`` while they do.

    Stopping rule (the paper runs a fixed schedule and does not state one): each video keeps its *best*
    iterate, the successful one with the lowest thickness ``||delta||_1 / 3T`` (``select="thickness"``)
    or the lowest regulariser ``lam * (beta1 * D1 + beta2 * D2)`` (``select="regularizer"``: with
    ``beta2 > 0`` the regularisers trade thickness for smoothness after the switch, so this keeps the
    smoother late iterates); it stops once it has succeeded and the best score has not dropped by more
    than ``min_improvement`` (relative) for ``patience`` consecutive iterations, or after ``steps``
    iterations. A video that never succeeds returns its last iterate (``success`` False). Success is
    checked on the same forward pass that gives the gradient, so it costs no extra model call.

    Args:
        model: white-box access to the target.
        videos: ``[N, T, C, H, W]`` in [0, 1] (not modified).
        label: true classes ``[N]`` (or one int).
        target: target classes for a targeted attack (Appendix A's targeted ``l_m``), ``None`` untargeted.
        eps: optional l-inf bound ``zeta`` on ``delta`` as a share of the value range (the paper's
            ``l_inf[%] / 100``, Sec. 5.2; 0.2 = 20%); ``delta`` is clipped to ``[-eps, eps]`` after every
            step. ``None`` (default, as in Sec. 4.3): unbounded except by the [0, 1] clip of Eq. 2.
        steps: maximum Adam iterations per video.
        lr: Adam learning rate (Appendix B: 1e-3).
        lam: ``lambda`` of Eq. 1, weight of all regularisers (Appendix B: 1).
        beta1: weight of the thickness term ``D1`` (Appendix B: 0.5; not Adam's beta).
        beta2: weight of the roughness term ``D2`` (Appendix B: 0.5; not Adam's beta).
        margin: ``m`` of Eq. 4 in probability (Appendix A / our default 0.05 as in Appendix C.1).
        loss_space: ``"probs"`` (default) or ``"logits"`` (Appendix A; see :func:`flicker_margin_loss`).
        patience, min_improvement: the stopping rule above.
        init_scale: start from ``U(-init_scale, init_scale)`` offsets instead of zeros (needs ``generator``
            for reproducibility); the paper starts from zero.
        select: ``"thickness"`` or ``"regularizer"``, which successful iterate is kept (see above).
        generator: randomness for ``init_scale`` only.

    Returns:
        :class:`AttackResult` (``queries`` 0, ``iterations`` per video). Per video ``extras``: ``offsets``
        (its best ``delta [T, C]``, plotted by ``vidattack attack --out``), ``delta_thickness`` /
        ``delta_roughness`` (Eq. 10-11 in %, of ``delta`` itself), ``first_success`` (iteration, -1
        never), ``best_iteration``, and the configuration (``eps``, ``lam``, ``beta1``, ...).
    """
    start_time = time.perf_counter()
    if not isinstance(model, WhiteBox):
        raise ValueError(
            f"flicker needs white-box access: pass vidattack.WhiteBox(model), got {type(model).__name__}"
        )
    validate_video(videos, "videos")
    if eps is not None and not eps > 0:
        raise ValueError(f"eps must be > 0 (a share of the value range) or None, got {eps}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    for name, value in (("lr", lr), ("margin", margin)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    for name, value in (("lam", lam), ("beta1", beta1), ("beta2", beta2), ("init_scale", init_scale)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be a positive int, got {patience!r}")
    if select not in ("thickness", "regularizer"):
        raise ValueError(f"select must be 'thickness' or 'regularizer', got {select!r}")

    clean = videos.detach()
    n, frames, channels = clean.shape[:3]
    num_classes = model.num_classes(clean)
    labels, targets = validate_label_and_target(label, target, n, num_classes)
    labels, targets = labels.to(clean.device), None if targets is None else targets.to(clean.device)

    delta = torch.zeros(n, frames, channels, device=clean.device, dtype=clean.dtype)
    if init_scale > 0:
        noise = torch.rand(delta.shape, generator=generator, dtype=clean.dtype).to(clean.device)
        delta += (noise * 2 - 1) * init_scale
    if eps is not None:
        delta.clamp_(-eps, eps)
    optimiser = MaskedAdam(delta, lr=lr)

    best = delta.clone()
    best_score = torch.full((n,), math.inf, device=clean.device)
    stale = torch.zeros(n, dtype=torch.long, device=clean.device)
    first_success = torch.full((n,), -1, dtype=torch.long)
    best_iteration = torch.full((n,), -1, dtype=torch.long)
    used = torch.zeros(n, dtype=torch.long)
    active = torch.ones(n, dtype=torch.bool, device=clean.device)
    trace: list[list[TracePoint]] = [[] for _ in range(n)]

    for step in range(steps + 1):
        rows = active.nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        params = delta[rows].clone().requires_grad_(True)
        logits = model.logits(apply_flicker(clean[rows], params))
        adv_loss = flicker_margin_loss(
            logits, labels[rows], None if targets is None else targets[rows], margin=margin, space=loss_space
        )
        regularizer = lam * (beta1 * thickness_reg(params) + beta2 * roughness_reg(params))
        objective = regularizer + adv_loss
        with torch.no_grad():
            success = is_adversarial(
                logits.argmax(1), labels[rows], None if targets is None else targets[rows]
            )
            score = params.detach().abs().mean(dim=(1, 2)) if select == "thickness" else regularizer.detach()
            better = success & (score < best_score[rows])
            significant = better & (score < best_score[rows] * (1 - min_improvement))
            chosen = rows[better]
            best[chosen] = params.detach()[better]
            best_score[chosen] = score[better]
            best_iteration[chosen.cpu()] = step
            newly = rows[success & (first_success[rows.cpu()].to(clean.device) < 0)]
            first_success[newly.cpu()] = step
            stale[rows] = torch.where(significant, torch.zeros_like(stale[rows]), stale[rows] + 1)
            used[rows.cpu()] = step
            for k, i in enumerate(rows.tolist()):
                trace[i].append((step, float(objective[k]), bool(success[k])))
            converged = (best_score[rows] < math.inf) & (stale[rows] >= patience)
            active[rows[converged]] = False
        if step == steps:
            break
        (grad,) = torch.autograd.grad(objective.sum(), params)
        full_grad = torch.zeros_like(delta)
        full_grad[rows] = grad
        optimiser.step(full_grad, active)
        if eps is not None:
            delta.clamp_(-eps, eps)

    found = best_score < math.inf
    final = torch.where(found.reshape(-1, 1, 1), best, delta).detach()
    adversarial = apply_flicker(clean, final).detach()
    with torch.no_grad():
        adv_label = model.predict(adversarial)
    thickness_pct = delta_thickness(final).cpu()
    roughness_pct = delta_roughness(final).cpu()
    shared = {"eps": eps, "lam": lam, "beta1": beta1, "beta2": beta2, "margin": margin, "select": select}
    extras = video_extras(
        n,
        shared,
        offsets=final.cpu(),
        delta_thickness=thickness_pct.tolist(),
        delta_roughness=roughness_pct.tolist(),
        first_success=[int(v) for v in first_success],
        best_iteration=[int(v) for v in best_iteration],
    )
    return AttackResult(
        adversarial=adversarial,
        success=is_adversarial(adv_label, labels, targets).cpu(),
        queries=torch.zeros(n, dtype=torch.long),
        iterations=used,
        label=labels.cpu(),
        target=None if targets is None else targets.cpu(),
        adv_label=adv_label.cpu(),
        seconds=time.perf_counter() - start_time,
        trace=trace,
        extras=extras,
        method="flicker",
    )
