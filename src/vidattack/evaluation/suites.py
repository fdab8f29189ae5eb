"""The versioned attack suites of ``vidattack evaluate``: one per threat model, attacked in a fixed order.

A suite is a list of :class:`Member` entries; adding a member is one line in :data:`SUITES` (and a
version bump, since results of different suites must not be compared under one name). Each member is
a method registered in :mod:`vidattack.methods` with the parameters it runs with at a given ``eps``.

Why these members (README "How robust is my model?"):

* white-box: PGD is the standard first-order adversary. A coarse-to-fine step schedule over three
  runs (cross-entropy with large steps, then the margin loss with a random start and smaller steps,
  then tiny steps) covers both the easy clips and the ones where the cross-entropy gradient vanishes
  (the margin loss is AutoAttack's answer to that). Flicker and sparse l2,1 are regularised attacks
  without a bound of their own; here they run clipped to ``eps`` and a success counts only within it.
* scores: Video Square Attack (vsquare) is vidattack's strongest score-based method; V-BAD and P-BAD
  are the published video baselines with different priors, so the worst case does not rest on one.
* labels: Heuristic (Wei et al. 2020) with only its label-only parts (salient region + Opt-attack;
  its frame selection needs top-1 scores); it is minimising, so it runs without ``eps`` and a success
  counts only when the L-inf distance of its result is within ``eps``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Member", "Suite", "SUITES", "THREATS", "get_suite"]

Threat = Literal["white-box", "scores", "labels"]
THREATS: tuple[str, ...] = ("white-box", "scores", "labels")


def _fixed(**values: Any) -> Callable[[float], dict[str, Any]]:
    """Parameters that do not depend on ``eps``."""
    return lambda eps: dict(values)


@dataclass(frozen=True)
class Member:
    """One attack of a suite.

    Attributes:
        label: the member's name in results (unique within the suite).
        method: a method name of :mod:`vidattack.methods`.
        params: ``eps -> method parameters`` (step sizes and stopping targets scale with ``eps``).
        why: one line for the README and the report.
    """

    label: str
    method: str
    params: Callable[[float], Mapping[str, Any]] = _fixed()
    why: str = ""


@dataclass(frozen=True)
class Suite:
    """A fixed, versioned list of members for one threat model (attacked in this order)."""

    threat: str
    version: str
    members: tuple[Member, ...]

    @property
    def name(self) -> str:
        """``vidattack-THREAT``."""
        return f"vidattack-{self.threat}"


SUITES: dict[str, Suite] = {
    "white-box": Suite("white-box", "1", (
        Member("pgd-ce", "pgd", lambda eps: {"loss": "ce", "steps": 20, "step_size": eps / 4},
               "PGD, cross-entropy, 20 large steps (eps/4): the cheap first pass"),
        Member("pgd-margin", "pgd", lambda eps: {"loss": "margin", "steps": 50, "step_size": eps / 10,
                                                  "random_start": True},
               "PGD, margin loss, random start, 50 steps of eps/10: no vanishing cross-entropy gradient"),
        Member("pgd-margin-fine", "pgd", lambda eps: {"loss": "margin", "steps": 100, "step_size": eps / 40,
                                                       "random_start": True},
               "PGD, margin loss, 100 small steps (eps/40): the end of the step schedule"),
        Member("flicker", "flicker", _fixed(), "Flickering (Pony et al. 2021), clipped to eps"),
        Member("sparse", "sparse", _fixed(), "Sparse l2,1 (Wei et al. 2019), clipped to eps"),
    )),
    "scores": Suite("scores", "1", (
        Member("vsquare", "vsquare", _fixed(), "Video Square Attack: vidattack's strongest score-based method"),
        Member("vbad", "vbad", _fixed(), "V-BAD (Jiang et al. 2019): transferred prior + partition NES"),
        Member("pbad", "pbad", _fixed(), "P-BAD (V-BAD Sec. 4.3): pixel-wise NES, a different prior"),
    )),
    "labels": Suite("labels", "1", (
        Member("heuristic", "heuristic", lambda eps: {"temporal": False, "map_target": eps * 255 / 8},
               "Heuristic (Wei et al. 2020), label-only parts (salient region + Opt-attack), minimising"),
        # TODO(vrays): add the stronger label-only attack here once registered, e.g.
        # Member("vrays", "vrays", _fixed(), "..."),  (and bump the version)
    )),
}  # fmt: skip


def get_suite(threat: str) -> Suite:
    """The suite of ``threat``; ``ValueError`` naming ``--threat`` otherwise."""
    if threat not in SUITES:
        raise ValueError(f"--threat must be one of {', '.join(THREATS)}, got {threat!r}")
    return SUITES[threat]
