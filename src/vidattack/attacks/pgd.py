"""Projected gradient descent (Madry et al. 2018): the white-box reference every attack is compared with.

L-inf (signed gradient steps) and L2 (normalised gradient steps), untargeted or targeted, optional random
start, and optional frame / pixel masks restricting where the perturbation may live (masked-out values
stay exactly zero). Each video stops at its first successful iterate when ``early_stop`` is set, so the
result is the least-perturbed success PGD found rather than the last step.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from vidattack.perturbation import Norm, build_mask, clip_to_valid, project
from vidattack.result import AttackResult, TracePoint, is_adversarial, video_extras
from vidattack.threat import WhiteBox
from vidattack.video import validate_label_and_target, validate_video

__all__ = ["pgd", "adversarial_loss"]


def adversarial_loss(logits: Tensor, label: Tensor, target: Tensor | None, kind: str = "ce") -> Tensor:
    """Per-video loss ``[N]`` that an attack *minimises*.

    ``kind="ce"``: untargeted ``-CE(logits, label)``, targeted ``CE(logits, target)``.
    ``kind="margin"`` (Carlini-Wagner): untargeted ``z_label - max_{j != label} z_j``, targeted
    ``max_{j != target} z_j - z_target``; negative once the attack succeeds.
    """
    if kind == "ce":
        if target is None:
            return -F.cross_entropy(logits, label, reduction="none")
        return F.cross_entropy(logits, target, reduction="none")
    if kind == "margin":
        reference = label if target is None else target
        own = logits.gather(1, reference.reshape(-1, 1)).squeeze(1)
        others = logits.masked_fill(F.one_hot(reference, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
        return own - others if target is None else others - own
    raise ValueError(f"loss must be 'ce' or 'margin', got {kind!r}")


def pgd(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float = 0.05,
    norm: Norm = "linf",
    steps: int = 50,
    step_size: float | None = None,
    random_start: bool = False,
    frame_mask: Tensor | None = None,
    pixel_mask: Tensor | None = None,
    loss: str = "ce",
    early_stop: bool = True,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Run PGD on ``videos [N,T,C,H,W]`` in [0, 1].

    Args:
        model: white-box access to the target.
        label: true classes ``[N]`` (or one int for all).
        target: target classes for a targeted attack, ``None`` for untargeted.
        eps: radius of the ``norm`` ball (L-inf: per value, in [0, 1] units; L2: of the whole video).
        steps: iterations.
        step_size: defaults to ``2.5 * eps / steps`` (Madry et al.'s rule of thumb).
        random_start: start uniformly in the L-inf ball (or a random L2 direction of radius eps).
        frame_mask: ``[T]`` or ``[N, T]``; only these frames may change.
        pixel_mask: ``[H, W]``, ``[T, H, W]``, ``[N,T,H,W]`` or ``[N,T,1|C,H,W]``; only these pixels may change.
        loss: ``"ce"`` or ``"margin"`` (see :func:`adversarial_loss`).
        early_stop: freeze each video at its first successful iterate.
        generator: randomness for ``random_start``.

    Returns:
        :class:`AttackResult` with ``queries`` 0 and ``iterations`` the steps each video used.
    """
    start_time = time.perf_counter()
    if not isinstance(model, WhiteBox):
        raise ValueError(f"pgd needs white-box access: pass vidattack.WhiteBox(model), got {type(model).__name__}")
    validate_video(videos, "videos")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    n = videos.shape[0]
    clean = videos.detach().clone()
    num_classes = model.num_classes(clean)
    labels, targets = validate_label_and_target(label, target, n, num_classes)
    labels, targets = labels.to(clean.device), None if targets is None else targets.to(clean.device)
    mask = build_mask(clean.shape, frame_mask=frame_mask, pixel_mask=pixel_mask, device=clean.device)
    alpha = 2.5 * eps / steps if step_size is None else step_size

    delta = torch.zeros_like(clean)
    if random_start:
        noise = torch.rand(clean.shape, generator=generator, device=clean.device if generator is None else None)
        noise = noise.to(clean.device) * 2 - 1
        if norm == "l2":
            noise = noise / noise.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1, 1) * eps
        else:
            noise = noise * eps
        delta = noise
    delta = _constrain(clean, delta, mask, eps, norm)

    done = torch.zeros(n, dtype=torch.bool, device=clean.device)
    used = torch.zeros(n, dtype=torch.long)
    best = clean + delta
    trace: list[list[TracePoint]] = [[] for _ in range(n)]
    for step in range(steps + 1):
        active = ~done if early_stop else torch.ones_like(done)
        if not bool(active.any()):
            break
        values, grad = model.gradient(
            clean + delta, lambda z: adversarial_loss(z, labels, targets, loss)  # noqa: B023
        )
        with torch.no_grad():
            pred = model.predict(clean + delta)
        success = is_adversarial(pred, labels, targets)
        for i in range(n):
            if bool(active[i]):
                trace[i].append((step, float(values[i]), bool(success[i])))
        newly = active & success
        best[newly] = (clean + delta)[newly]
        if early_stop:
            done |= success
        else:
            best[active] = (clean + delta)[active]
        used[active.cpu()] = step
        if step == steps:
            break
        if norm == "linf":
            update = grad.sign()
        else:
            update = grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12).reshape(-1, 1, 1, 1, 1)
        moving = active.reshape(-1, 1, 1, 1, 1).float()
        delta = _constrain(clean, delta - alpha * update * moving, mask, eps, norm)
    not_done = ~done if early_stop else torch.ones_like(done)
    best[not_done] = (clean + delta)[not_done]
    with torch.no_grad():
        adv_label = model.predict(best)
    success = is_adversarial(adv_label, labels, targets).cpu()
    # PGD stays within the bound by construction: a failure means no adversarial point was found within
    # eps in the steps given (a larger eps, more steps or restarts may find one).
    reasons = ["success" if bool(ok) else "bound-reached" for ok in success]
    return AttackResult(
        adversarial=best.detach(),
        success=success,
        queries=torch.zeros(n, dtype=torch.long),
        iterations=used,
        label=labels.cpu(),
        target=None if targets is None else targets.cpu(),
        adv_label=adv_label.cpu(),
        seconds=time.perf_counter() - start_time,
        trace=trace,
        extras=video_extras(n, {"eps": eps, "norm": norm, "step_size": alpha}, stop_reason=reasons),
        method="pgd",
    )


def _constrain(clean: Tensor, delta: Tensor, mask: Tensor | None, eps: float, norm: Norm) -> Tensor:
    if mask is not None:
        delta = delta * mask
    return clip_to_valid(clean, project(delta, eps, norm)).detach()
