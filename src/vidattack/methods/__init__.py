"""Methods: what the CLI, campaigns and evaluations run by name.

A method is an attack core (:mod:`vidattack.attacks`) under a threat model, with a preset (the paper's
settings or vidattack's extensions), typed parameters read from the core's type hints, and what it
needs from the attacker (:mod:`vidattack.methods.attacker_data`: start videos, initial directions,
training clips; image models for priors), supplied before any query and never substituted silently.

    result = vidattack.methods.run("vbad", model, videos, labels, budget=30_000, seed=0)

:mod:`vidattack.methods.record` runs a method on one video and turns the outcome into the flat record
(with its 8-bit and H.264 re-checks) that the CLI and campaigns report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from vidattack.methods.attacker_data import (
    AttackerData,
    AttackerDataRequired,
    FolderAttackerData,
    SyntheticAttackerData,
    TensorAttackerData,
    open_attacker_data,
)
from vidattack.methods.catalog import METHODS
from vidattack.methods.params import Param, parse_text
from vidattack.methods.spec import MethodSpec, Preset, core_parameters, run_spec
from vidattack.result import AttackResult

__all__ = [
    "run", "get", "names", "parameters", "parse_param", "MethodSpec", "Preset", "Param", "AttackerData",
    "AttackerDataRequired", "SyntheticAttackerData", "FolderAttackerData", "TensorAttackerData",
    "open_attacker_data",
]  # fmt: skip


def names() -> list[str]:
    """Method names, sorted."""
    return sorted(METHODS)


def get(name: str) -> MethodSpec:
    """The spec of method ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown attack method {name!r}; known methods: {', '.join(names())}")
    return METHODS[name]


def parameters(name: str) -> dict[str, Param]:
    """The parameters a user may set for ``name``: the core's (minus preset and supplied ones) and the
    method's own."""
    spec = get(name)
    return {**core_parameters(spec), **{param.name: param for param in spec.method_params}}


def parse_param(name: str, text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` for method ``name``, VALUE parsed after the parameter's type."""
    if "=" not in text:
        raise ValueError(f"attack parameter must look like KEY=VALUE, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    known = parameters(name)
    if key not in known:
        raise ValueError(f"attack {name!r} has no parameter {key!r}; parameters: {', '.join(sorted(known)) or 'none'}")
    return key, parse_text(known[key], raw)


def run(
    name: str,
    model: Any,
    videos: Tensor,
    label: Tensor,
    *,
    target: Tensor | None = None,
    eps: float | None = None,
    budget: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    params: Mapping[str, Any] | None = None,
    attacker_data: AttackerData | None = None,
) -> AttackResult:
    """Run method ``name`` on ``videos [N,T,C,H,W]`` (float in [0, 1]) against a plain ``model``.

    Args:
        model: a callable ``[N,T,C,H,W] -> [N,K]`` logits (any ``nn.Module`` in vidattack's layout, or a
            :class:`~vidattack.remote.RemoteModel`); the method sees it only through its threat model.
        label, target: ``long[N]``; ``target=None`` is untargeted.
        eps: bounded methods' perturbation bound (``None``: the method's default); an error for
            minimising methods.
        budget: per-video query budget of black-box methods; an error for white-box ones.
        seed: seeds the method's ``torch.Generator``.
        batch_size: largest batch an oracle sends to the model.
        params: method parameters (values, or ``KEY=VALUE`` text parsed after the parameter's type).
        attacker_data: the attacker's own videos, for methods that need them (see
            :mod:`vidattack.methods.attacker_data`); ``None`` makes those methods raise
            :class:`AttackerDataRequired` before any query.
    """
    return run_spec(
        get(name), model, videos, label, target=target, eps=eps, budget=budget, seed=seed,
        batch_size=batch_size, params=dict(params or {}), attacker_data=attacker_data,
    )  # fmt: skip
