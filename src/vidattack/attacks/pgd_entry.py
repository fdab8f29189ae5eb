"""Registry entry for the PGD baseline (kept apart so :mod:`pgd` stays a pure function module)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vidattack.attacks.pgd import pgd
from vidattack.attacks.registry import AttackSpec, register
from vidattack.result import AttackResult
from vidattack.threat import WhiteBox


def _run_pgd(
    model: Any,
    videos: Tensor,
    label: Tensor,
    *,
    target: Tensor | None,
    eps: float | None,
    budget: int | None,
    generator: torch.Generator,
    batch_size: int,
    **params: Any,
) -> AttackResult:
    del budget, batch_size  # white-box: no queries to budget
    return pgd(WhiteBox(model), videos, label, target=target, eps=0.05 if eps is None else eps,
               generator=generator, **params)


PGD = register(
    AttackSpec(
        name="pgd",
        threat="white-box",
        summary="Projected gradient descent, L-inf or L2, with optional frame/pixel masks (baseline).",
        core=pgd,
        run=_run_pgd,
    )
)
