"""Registry entry for the PGD baseline (kept apart so :mod:`pgd` stays a pure function module)."""

from __future__ import annotations

from vidattack.attacks.common import white_box_adapter
from vidattack.attacks.pgd import pgd
from vidattack.attacks.registry import AttackSpec, register

_run_pgd = white_box_adapter(pgd, default_eps=0.05)


PGD = register(
    AttackSpec(
        name="pgd",
        threat="white-box",
        summary="Projected gradient descent, L-inf or L2, with optional frame/pixel masks (baseline).",
        core=pgd,
        run=_run_pgd,
    )
)
