"""The registry of attack methods that the CLI and campaigns run by name.

Each attack module registers an :class:`AttackSpec` whose ``run`` adapter builds the attack's threat
model from a plain model (``WhiteBox``, ``ScoreOracle`` or ``LabelOracle``), so the CLI and campaign
runner never need to know which access an attack has. Attack-specific keyword arguments are passed
through ``params`` and checked against the core function's signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vidattack.result import AttackResult

__all__ = ["AttackSpec", "register", "get", "names", "run", "parameters", "parse_param"]

# Arguments every adapter receives explicitly; they are not attack-specific parameters.
COMMON = ("model", "oracle", "videos", "video", "label", "target", "eps", "budget", "generator", "seed")


@dataclass(frozen=True)
class AttackSpec:
    """A runnable attack.

    Attributes:
        name: registry name (``vidattack attack NAME``).
        threat: ``"white-box"``, ``"scores"`` or ``"labels"``.
        summary: one line for listings.
        core: the attack's core function, whose keyword-only arguments are its parameters.
        run: adapter ``run(model, videos, label, *, target, eps, budget, generator, batch_size, **params)``.
        preset: fixed parameters that define this entry (e.g. P-BAD's static tentative perturbation).
    """

    name: str
    threat: str
    summary: str
    core: Callable[..., AttackResult]
    run: Callable[..., AttackResult]
    preset: tuple[tuple[str, Any], ...] = ()


_REGISTRY: dict[str, AttackSpec] = {}


def register(spec: AttackSpec) -> AttackSpec:
    """Add ``spec`` to the registry (a name may be registered once)."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"attack {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """Registered attack names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def get(name: str) -> AttackSpec:
    """The spec for ``name``; ``ValueError`` listing the known names otherwise."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown attack method {name!r}; known methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def parameters(name: str) -> dict[str, inspect.Parameter]:
    """Attack-specific keyword parameters of ``name`` (common arguments and preset ones excluded)."""
    spec = get(name)
    fixed = dict(spec.preset)
    return {
        key: param
        for key, param in inspect.signature(spec.core).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and key not in COMMON and key not in fixed
    }


def parse_param(name: str, text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` for attack ``name``, converting VALUE after the parameter's default type."""
    if "=" not in text:
        raise ValueError(f"attack parameter must look like KEY=VALUE, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    known = parameters(name)
    if key not in known:
        raise ValueError(f"attack {name!r} has no parameter {key!r}; parameters: {', '.join(sorted(known)) or 'none'}")
    return key, convert_value(raw, known[key].default, key)


def convert_value(raw: str, default: Any, key: str) -> Any:
    """Convert a command-line string to the type of ``default`` (bool, int, float, str, None-able)."""
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, (tuple, list)):
            return tuple(convert_value(part, default[0] if default else "", key) for part in raw.split(","))
        if default is None or default is inspect.Parameter.empty:
            if raw.lower() == "none":
                return None
            for cast in (int, float):
                try:
                    return cast(raw)
                except ValueError:
                    pass
        return raw
    except ValueError:
        raise ValueError(f"parameter {key}: cannot read {raw!r} as {type(default).__name__}") from None


def run(
    name: str,
    model: Callable[[Tensor], Tensor],
    videos: Tensor,
    label: Tensor,
    *,
    target: Tensor | None = None,
    eps: float | None = None,
    budget: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    params: dict[str, Any] | None = None,
) -> AttackResult:
    """Run attack ``name`` on ``videos [N,T,C,H,W]`` against a plain ``model``; see :class:`AttackSpec`.

    ``eps=None`` keeps the attack's own default; ``budget`` is the per-video query budget of black-box
    attacks (ignored by white-box ones); ``seed`` seeds the attack's ``torch.Generator``.
    """
    spec = get(name)
    options = dict(params or {})
    known = parameters(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"attack {name!r} has no parameter(s) {', '.join(unknown)}; parameters: {', '.join(sorted(known))}")
    if spec.threat == "white-box" and getattr(model, "black_box_only", False):
        raise ValueError(
            f"attack {name!r} is white-box (needs gradients) and this model is black-box only (a remote "
            "service); use a scores or labels method (`vidattack attacks`)"
        )
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    result = spec.run(
        model, videos, label, target=target, eps=eps, budget=budget, generator=generator,
        batch_size=batch_size, **dict(spec.preset), **options,
    )
    return result.replace(method=name)


def _load_builtin() -> None:
    # Importing the attack modules registers them; done lazily to keep `import vidattack` light.
    import importlib

    for module in ("pgd_entry", "vbad", "heuristic", "sva", "flicker", "sparse_l21"):
        try:
            importlib.import_module(f"vidattack.attacks.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"vidattack.attacks.{module}":
                raise
