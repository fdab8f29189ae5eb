"""The result every attack returns, and the one place where success is decided."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "AttackResult",
    "DistortionPoint",
    "TracePoint",
    "distortion_point",
    "is_adversarial",
    "video_extras",
]

# One point of an attack's progress: (queries or iterations so far, loss or top-1 probability, success).
TracePoint = tuple[int, float, bool]

# One point of a minimising (label-only) attack's distortion trace, kept per video in
# ``extras[i]["distortion_trace"]``: (queries so far, L-inf in [0, 1], MAP in 0-255) of one adversarial
# video, appended whenever a video improves the best L-inf or the best MAP found so far. The smallest
# value of a column over a trace's prefix is the best so far (vidattack.curves), which lets a report
# draw distortion-vs-queries curves of any method.
DistortionPoint = tuple[int, float, float]


def distortion_point(queries: int, clean: Tensor, adversarial: Tensor) -> DistortionPoint:
    """The :data:`DistortionPoint` of ``adversarial`` against ``clean`` (same shape, [0, 1]) at ``queries``."""
    delta = (adversarial - clean).abs()
    return int(queries), float(delta.max()), float(delta.mean()) * 255.0


def is_adversarial(pred: Tensor, label: Tensor, target: Tensor | None) -> Tensor:
    """Decide success for predictions ``pred long[N]``.

    Untargeted (``target is None``): the prediction differs from the true ``label``. Targeted: the
    prediction equals ``target``. A ``target`` tensor may hold ``-1`` for videos attacked untargeted
    within a mixed batch.

    Returns:
        ``bool[N]``.
    """
    pred = pred.reshape(-1)
    label = label.reshape(-1).to(pred.device)
    if target is None:
        return pred != label
    target = target.reshape(-1).to(pred.device)
    return torch.where(target >= 0, pred == target, pred != label)


def video_extras(
    n: int, shared: Mapping[str, Any] | None = None, **per_video: Sequence[Any] | Tensor
) -> list[dict[str, Any]]:
    """``AttackResult.extras`` for ``n`` videos: one dict per video.

    Every key of ``shared`` (the attack's configuration: eps, norm, ...) is copied into each video's
    dict; ``per_video[key][i]`` goes into video ``i``'s (a tensor is indexed on its first dimension).
    Entries whose value is ``None`` are left out of ``per_video``.

    Raises:
        ValueError: a per-video value does not have ``n`` entries.
    """
    out = [dict(shared or {}) for _ in range(n)]
    for key, values in per_video.items():
        if values is None:
            continue
        if len(values) != n:
            raise ValueError(f"extras[{key!r}] must have one entry per video ({n}), got {len(values)}")
        for i in range(n):
            out[i][key] = values[i]
    return out


@dataclass(frozen=True)
class AttackResult:
    """What an attack returns for a batch of ``N`` videos.

    Attributes:
        adversarial: ``float[N,T,C,H,W]`` in [0, 1], the final adversarial (or best) videos.
        success: ``bool[N]``; adversarial within the attack's bound and budget.
        queries: ``long[N]`` oracle queries per video, as counted by the oracle (0 for white-box).
        iterations: ``long[N]`` optimisation iterations per video.
        label: ``long[N]`` true labels.
        target: ``long[N]`` target classes, or ``None`` for an untargeted attack.
        adv_label: ``long[N]`` the model's prediction on ``adversarial``.
        seconds: wall time of the whole attack.
        trace: per video, a list of ``(queries or iterations, loss or top-1 probability, success)``.
        extras: one dict per video (``len(extras) == N``, also for ``N = 1``) of attack-specific data:
            the configuration used, key-frame masks, rewards, flicker offsets, and ``stop_reason``
            where the attack says why it stopped (see :func:`video_extras`). Minimising attacks add
            ``distortion_trace``: a list of :data:`DistortionPoint` (best adversarial so far).
        method: the method name it was run as (:func:`vidattack.methods.names`).
    """

    adversarial: Tensor
    success: Tensor
    queries: Tensor
    iterations: Tensor
    label: Tensor
    target: Tensor | None
    adv_label: Tensor
    seconds: float
    trace: list[list[TracePoint]] = field(default_factory=list)
    extras: list[dict[str, Any]] = field(default_factory=list)
    method: str = ""

    def __post_init__(self) -> None:
        n = self.adversarial.shape[0]
        for name in ("success", "queries", "iterations", "label", "adv_label"):
            value = getattr(self, name)
            if value.shape != (n,):
                raise ValueError(f"AttackResult.{name} must have shape [{n}], got {tuple(value.shape)}")
        if self.target is not None and self.target.shape != (n,):
            raise ValueError(f"AttackResult.target must have shape [{n}], got {tuple(self.target.shape)}")
        if not self.extras:
            object.__setattr__(self, "extras", [{} for _ in range(n)])
        if not isinstance(self.extras, list) or len(self.extras) != n or not all(
            isinstance(entry, dict) for entry in self.extras
        ):
            raise ValueError(f"AttackResult.extras must be a list of {n} dicts (one per video)")

    @property
    def n(self) -> int:
        """Number of videos in the result."""
        return int(self.adversarial.shape[0])

    @property
    def targeted(self) -> bool:
        """Whether the attack was targeted."""
        return self.target is not None

    def replace(self, **changes: Any) -> AttackResult:
        """A copy with some fields replaced (the dataclass is frozen)."""
        return dataclasses.replace(self, **changes)
