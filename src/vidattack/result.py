"""The result every attack returns, and the one place where success is decided."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["AttackResult", "TracePoint", "is_adversarial"]

# One point of an attack's progress: (queries or iterations so far, loss or top-1 probability, success).
TracePoint = tuple[int, float, bool]


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
        extras: attack-specific data (key-frame masks, rewards, flicker offsets, ...).
        method: the attack's registry name.
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
    extras: dict[str, Any] = field(default_factory=dict)
    method: str = ""

    def __post_init__(self) -> None:
        n = self.adversarial.shape[0]
        for name in ("success", "queries", "iterations", "label", "adv_label"):
            value = getattr(self, name)
            if value.shape != (n,):
                raise ValueError(f"AttackResult.{name} must have shape [{n}], got {tuple(value.shape)}")
        if self.target is not None and self.target.shape != (n,):
            raise ValueError(f"AttackResult.target must have shape [{n}], got {tuple(self.target.shape)}")

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
