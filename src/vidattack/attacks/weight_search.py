"""Per-video search of a model-specific weight, as Carlini and Wagner search their constant.

Sparse l2,1's regulariser weight and Flickering's ``lam`` trade the size (or sparsity) of the perturbation
against success, and the right value depends on the model: a weight that suits one model leaves another
unfooled with a near-zero perturbation. :func:`search_weight` runs the attack with the largest weight of a
grid, re-runs only the videos that were not fooled with the next (smaller) weight, and keeps for each video
the result of the largest weight that fooled it (else the last one tried), saying which in its extras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from vidattack.result import AttackResult
from vidattack.threat import WhiteBox
from vidattack.video import validate_label_and_target, validate_video

__all__ = ["search_weight", "check_grid", "fixed_or_searched"]


def check_grid(grid: Sequence[float], name: str) -> list[float]:
    """``grid`` as a list of positive floats, largest first; ``ValueError`` naming ``name`` otherwise."""
    values = sorted({float(v) for v in grid}, reverse=True)
    if not values or not all(v >= 0 for v in values):
        raise ValueError(f"{name} must be one or more non-negative weights, got {list(grid)!r}")
    return values


def search_weight(
    attack: Callable[[Tensor, float], AttackResult], n: int, grid: Sequence[float], name: str
) -> AttackResult:
    """Run ``attack(indices, weight)`` (an :class:`AttackResult` for the videos ``indices``) over ``grid``.

    Returns one result for the ``n`` videos: per video the first weight (largest first) that fooled it,
    else the last weight's result. Each video's extras gain ``name`` (the weight kept), ``{name}_tried``
    and a ``stop_reason``: ``success``, or ``weight-too-strong`` when even the smallest weight failed
    (the regularisation still outweighs the adversarial loss: try a smaller grid or more steps).
    """
    weights = check_grid(grid, f"{name}_grid")
    pending = torch.arange(n)
    chosen: dict[int, tuple[AttackResult, int, float]] = {}
    tried = [0] * n
    seconds = 0.0
    for weight in weights:
        result = attack(pending, weight)
        seconds += result.seconds
        for row, video in enumerate(pending.tolist()):
            tried[video] += 1
            if bool(result.success[row]) or weight == weights[-1]:
                chosen[video] = (result, row, weight)
        pending = pending[~result.success.cpu()]
        if pending.numel() == 0:
            break
    parts = [chosen[i] for i in range(n)]
    first = parts[0][0]

    def pick(field: str) -> Tensor:
        return torch.stack([getattr(result, field)[row] for result, row, _ in parts])

    extras = []
    for i, (result, row, weight) in enumerate(parts):
        entry = {**result.extras[row], name: weight, f"{name}_tried": tried[i]}
        entry["stop_reason"] = "success" if bool(result.success[row]) else "weight-too-strong"
        extras.append(entry)
    return AttackResult(
        adversarial=pick("adversarial"),
        success=pick("success"),
        queries=pick("queries"),
        iterations=pick("iterations"),
        label=pick("label"),
        target=None if first.target is None else pick("target"),
        adv_label=pick("adv_label"),
        seconds=seconds,
        trace=[result.trace[row] if result.trace else [] for result, row, _ in parts],
        extras=extras,
        method=first.method,
    )


def fixed_or_searched(
    fixed: Callable[..., AttackResult],
    model: WhiteBox,
    videos: Tensor,
    label: object,
    target: object | None,
    weight: float | None,
    grid: Sequence[float],
    name: str,
    **options: object,
) -> AttackResult:
    """``fixed(model, videos, labels, target=, **{name: weight}, **options)`` once when ``weight`` is
    given (``stop_reason`` ``success`` or ``steps``), else :func:`search_weight` over ``grid``."""
    if not isinstance(model, WhiteBox):
        raise ValueError(f"{fixed.__name__} needs white-box access: pass vidattack.WhiteBox(model), got "
                         f"{type(model).__name__}")  # fmt: skip
    validate_video(videos, "videos")
    n = videos.shape[0]
    labels, targets = validate_label_and_target(label, target, n, model.num_classes(videos))
    if weight is not None:
        result = fixed(model, videos, labels, target=targets, **{name: weight}, **options)
        reasons = ["success" if bool(ok) else "steps" for ok in result.success]
        return result.replace(extras=[{**e, "stop_reason": r} for e, r in zip(result.extras, reasons, strict=True)])

    def attack(indices: Tensor, value: float) -> AttackResult:
        chosen = None if targets is None else targets[indices]
        return fixed(model, videos[indices], labels[indices], target=chosen, **{name: value}, **options)

    return search_weight(attack, n, grid, name)
