"""What a method is (a core attack function under a threat model, with a preset and a kind), and the
one adapter that runs any method on a plain model.

A method is *bounded* when ``eps`` is its perturbation bound (success needs the adversarial video
within it) and *minimising* when it searches for the smallest perturbation and has a stopping target
named for what it is (``map_target``); giving ``eps`` to a minimising method is an error.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from vidattack.methods.attacker_data import AttackerData
from vidattack.methods.params import Param, check_value
from vidattack.result import AttackResult
from vidattack.threat import LabelOracle, ScoreOracle, WhiteBox

__all__ = [
    "MethodSpec", "Preset", "Context", "Threat", "Kind", "core_parameters", "run_spec", "check_eps", "COMMON",
    "MAX_BUDGET", "bound_used",
]  # fmt: skip

Threat = Literal["white-box", "scores", "labels"]
Kind = Literal["bounded", "minimising"]

#: Arguments every method receives from the runner; they are not method parameters.
COMMON = ("model", "oracle", "videos", "video", "label", "target", "eps", "generator")


@dataclass(frozen=True)
class Preset:
    """Fixed core keywords that define a method (e.g. P-BAD's static tentative perturbation).

    Attributes:
        values: the keywords and their values.
        note: what the preset is, with the paper section.
    """

    values: Mapping[str, Any]
    note: str = ""


@dataclass
class Context:
    """What a method's ``supply`` step sees: the run's inputs and the method-level parameter values.

    ``supply`` returns core keywords (start videos, initial directions, image models, ...) and may add
    ``notes`` (recorded in every video's extras as ``method_notes``).
    """

    name: str
    model: Any
    videos: Tensor
    label: Tensor
    target: Tensor | None
    generator: torch.Generator
    attacker_data: AttackerData | None
    values: dict[str, Any]
    core_values: dict[str, Any]  # the core keywords so far: the preset's, then the user's
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The attacked clips' ``(T, C, H, W)``."""
        return tuple(int(s) for s in self.videos.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class MethodSpec:
    """A runnable method.

    Attributes:
        name: registry name (``vidattack attack NAME``).
        threat: ``"white-box"``, ``"scores"`` or ``"labels"``.
        kind: ``"bounded"`` or ``"minimising"``.
        summary: one line for listings.
        core: the attack function ``core(threat_object, videos, label, *, target, generator, ...)``.
        preset: fixed core keywords that define this entry.
        default_eps: bounded methods: ``eps`` when none is given (``None``: the core's own default).
        make_threat: builds the threat object from ``(model, budget, batch_size, target)``; default
            ``WhiteBox(model)``, ``ScoreOracle(model, top_k=1, ...)`` or ``LabelOracle(model, ...)``.
        method_params: parameters of the method that are not the core's (consumed by ``supply``).
        supplied: core keywords that ``supply`` fills (hidden from the command line).
        supply: ``supply(context) -> core keywords`` (attacker data, image models, parsed masks).
    """

    name: str
    threat: Threat
    kind: Kind
    summary: str
    core: Callable[..., AttackResult]
    preset: Preset = Preset({})
    default_eps: float | None = 0.05
    make_threat: Callable[..., Any] | None = None
    method_params: tuple[Param, ...] = ()
    supplied: frozenset[str] = frozenset()
    supply: Callable[[Context], dict[str, Any]] | None = None


def _default_threat(spec: MethodSpec, model: Any, budget: int | None, batch_size: int, target: Any) -> Any:
    if spec.make_threat is not None:
        return spec.make_threat(model, budget=budget, batch_size=batch_size, target=target)
    if spec.threat == "white-box":
        return WhiteBox(model)
    if spec.threat == "scores":
        return ScoreOracle(model, top_k=1, budget=budget, batch_size=batch_size)
    return LabelOracle(model, budget=budget, batch_size=batch_size)


def bound_used(spec: MethodSpec, eps: float | None) -> float | None:
    """The L-inf bound a run of ``spec`` works under, for records: ``eps`` when given, else the method's
    default, else its core's own default; ``None`` for a minimising method or a core unbounded by default."""
    if spec.kind != "bounded":
        return None
    if eps is not None or spec.default_eps is not None:
        return spec.default_eps if eps is None else eps
    parameter = inspect.signature(spec.core).parameters.get("eps")
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def core_parameters(spec: MethodSpec) -> dict[str, Param]:
    """The core's keyword parameters a user may set: typed from its hints; without the common
    arguments, the preset's and the supplied ones."""
    hints = typing.get_type_hints(spec.core)
    out: dict[str, Param] = {}
    for name, parameter in inspect.signature(spec.core).parameters.items():
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY or parameter.default is inspect.Parameter.empty:
            continue
        if name in COMMON or name in spec.preset.values or name in spec.supplied:
            continue
        out[name] = Param(name, hints.get(name, Any), parameter.default)
    return out


#: Budgets must fit the campaign store's 64-bit integers.
MAX_BUDGET = 2**63 - 1


def check_eps(eps: Any, norm: str = "linf") -> None:
    """``eps`` must be finite and > 0, and at most 1 for an L-inf bound (the [0, 1] pixel scale; an L2
    bound over a whole video may exceed 1)."""
    if eps is None:
        return
    upper = math.inf if norm == "l2" else 1.0
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or not 0 < eps <= upper:
        scale = "> 0 (an L2 bound)" if norm == "l2" else "in (0, 1] (an L-inf bound on the [0, 1] pixel scale)"
        raise ValueError(f"eps must be a finite number {scale}, got {eps!r}")


def _check_run_arguments(eps: Any, budget: Any, batch_size: Any, norm: str) -> None:
    check_eps(eps, norm)
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or not 0 <= budget <= MAX_BUDGET):
        raise ValueError(f"budget must be an integer in [0, 2^63 - 1] (queries per video), got {budget!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def run_spec(
    spec: MethodSpec,
    model: Any,
    videos: Tensor,
    label: Tensor,
    *,
    target: Tensor | None,
    eps: float | None,
    budget: int | None,
    seed: int,
    batch_size: int,
    params: Mapping[str, Any],
    attacker_data: AttackerData | None,
) -> AttackResult:
    """Run ``spec`` on ``videos [N,T,C,H,W]``: check parameters, build the threat object, supply the
    attacker's data (before any query), call the core; see :func:`vidattack.methods.run`."""
    known_core = core_parameters(spec)
    known_method = {param.name: param for param in spec.method_params}
    unknown = sorted(set(params) - set(known_core) - set(known_method))
    if unknown:
        known = sorted(set(known_core) | set(known_method))
        raise ValueError(
            f"method {spec.name!r} has no parameter(s) {', '.join(unknown)}; parameters: {', '.join(known) or 'none'}"
        )
    core_values: dict[str, Any] = {}
    method_values = {param.name: param.default for param in spec.method_params}
    for key, value in params.items():
        param = known_core.get(key) or known_method[key]
        (core_values if key in known_core else method_values)[key] = check_value(param, value)
    _check_run_arguments(eps, budget, batch_size, str(core_values.get("norm", "linf")))
    if spec.kind == "minimising" and eps is not None:
        raise ValueError(
            f"eps: {spec.name} is a minimising method (it searches for the smallest perturbation and has no "
            f"eps bound); set its stopping target instead, e.g. --param map_target=3 (0-255 scale)"
        )
    if spec.threat == "white-box" and getattr(model, "black_box_only", False):
        raise ValueError(
            f"method {spec.name!r} is white-box (needs gradients) and this model is black-box only (a remote "
            "service); use a scores or labels method (`vidattack attacks`)"
        )
    if spec.threat == "white-box" and budget is not None:
        raise ValueError(f"budget: {spec.name} is a white-box method and makes no queries; drop the query budget")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    threat_object = _default_threat(spec, model, budget, batch_size, target)
    keywords = {**spec.preset.values, **core_values}
    context = Context(spec.name, model, videos, label, target, generator, attacker_data, method_values, keywords)
    if spec.supply is not None:
        keywords.update(spec.supply(context))
    if spec.kind == "bounded" and "eps" in inspect.signature(spec.core).parameters:
        keywords["eps"] = bound_used(spec, eps)  # the same bound the record names
    result = spec.core(threat_object, videos, label, target=target, generator=generator, **keywords)
    if context.notes:
        note = "; ".join(context.notes)
        result = result.replace(extras=[{**entry, "method_notes": note} for entry in result.extras])
    return result.replace(method=spec.name)
