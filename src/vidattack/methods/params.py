"""Typed method parameters: read from the core function's type hints, parsed from ``KEY=VALUE`` text
(the CLI's ``--param``) and checked when given as values (campaign configs, Python).

Supported annotations: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]`` choices,
``tuple[X, ...]`` of those (comma-separated on the command line), and ``X | None`` of any of them
(``none`` on the command line). Parameters of other types (tensors, modules) are Python-only.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

__all__ = ["Param", "Range", "RANGES", "parse_text", "check_value", "check_range", "is_settable", "describe"]

_NONE = type(None)


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter may take: ``low`` .. ``high`` (``None``: unbounded), each end open
    or closed; ``even``: an even integer (antithetic sample pairs)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    even: bool = False

    def describe(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"in {left}{low}, {high}{right}" + (", even" if self.even else "")

    def contains(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return not self.even or (isinstance(value, int) and value % 2 == 0)


_POSITIVE = Range(0.0, None, low_open=True)
_NON_NEGATIVE = Range(0.0, None)
_AT_LEAST_ONE = Range(1, None)
_UNIT = Range(0.0, 1.0)
#: Declared ranges of the parameters every method shares by name (one meaning per word).
RANGES: dict[str, Range] = {
    **{name: _POSITIVE for name in (
        "step_size", "min_step_size", "lr", "lr_end", "sigma", "beta", "eta", "min_beta", "tolerance", "ratio",
        "init_rtol", "eps_decay", "map_target", "start_eps", "init_scale")},
    **{name: _NON_NEGATIVE for name in (
        "lam", "beta1", "beta2", "gamma_rep", "gamma_attack", "gamma_length", "omega", "margin", "max_iterations",
        "grid_refinements", "max_rounds", "plateau")},
    **{name: _AT_LEAST_ONE for name in (
        "steps", "epochs", "episodes", "samples", "num_init", "patches", "num_parts", "hidden", "candidates",
        "frame_block", "trials", "num_frames", "train_epochs", "train_count", "decay_patience", "loss_window",
        "shrink_tries", "tile", "episode_queries", "query_soft", "query_hard", "patience", "batch_size")},
    "population": Range(2, None, even=True),
    "max_population": Range(2, None, even=True),
    "mask_prob": _UNIT,
    "p_init": Range(0.0, 1.0, low_open=True),
    "phi": Range(0.0, 1.0, low_open=True),
    "momentum": Range(0.0, 1.0, high_open=True),
    "sparsity": Range(0.0, 1.0, high_open=True),
    "shrink": Range(0.0, 1.0, low_open=True, high_open=True),
}  # fmt: skip


@dataclass(frozen=True)
class Param:
    """One parameter of a method: its name, type annotation, default, a one-line help and its range."""

    name: str
    annotation: Any
    default: Any
    help: str = ""
    range: Range | None = None

    def __post_init__(self) -> None:
        if self.range is None and self.name in RANGES:
            object.__setattr__(self, "range", RANGES[self.name])


def check_range(param: Param, value: Any) -> None:
    """``ValueError`` naming ``param`` when a numeric ``value`` (or tuple element) is outside its range."""
    if param.range is None or value is None or isinstance(value, bool):
        return
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not param.range.contains(item):
            raise ValueError(f"parameter {param.name} must be {param.range.describe()}, got {item!r}")


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _members(annotation: Any) -> list[Any]:
    return list(_args(annotation)) if _is_union(annotation) else [annotation]


def is_settable(annotation: Any) -> bool:
    """Whether values of ``annotation`` can be written as text (see the module docstring)."""
    members = [m for m in _members(annotation) if m is not _NONE]
    return bool(members) and all(_settable_one(m) for m in members)


def _settable_one(annotation: Any) -> bool:
    if annotation in (bool, int, float, str):
        return True
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return True
    if origin is tuple:
        args = _args(annotation)
        return len(args) == 2 and args[1] is Ellipsis and _settable_one(args[0])
    return False


def describe(annotation: Any) -> str:
    """A short human name of ``annotation`` for help and errors (``int``, ``one of a|b``, ...)."""
    parts = []
    for member in _members(annotation):
        if member is _NONE:
            parts.append("none")
        elif typing.get_origin(member) is Literal:
            parts.append("one of " + "|".join(str(v) for v in _args(member)))
        elif typing.get_origin(member) is tuple:
            parts.append(f"comma-separated {describe(_args(member)[0])}s")
        else:
            parts.append(getattr(member, "__name__", str(member)))
    return " or ".join(parts)


def _parse_one(raw: str, annotation: Any) -> Any:
    if annotation is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if annotation is int:
        return int(raw)
    if annotation is float:
        value = float(raw)
        if math.isnan(value):  # inf is a meaningful setting for some (e.g. Heuristic's omega); NaN never is
            raise ValueError(raw)
        return value
    if annotation is str:
        return raw
    if typing.get_origin(annotation) is Literal:
        for choice in _args(annotation):
            if str(choice) == raw:
                return choice
        raise ValueError(raw)
    if typing.get_origin(annotation) is tuple:
        return tuple(_parse_one(part.strip(), _args(annotation)[0]) for part in raw.split(",") if part.strip())
    raise ValueError(raw)


def parse_text(param: Param, raw: str) -> Any:
    """Parse ``raw`` (command-line text) as a value of ``param``.

    Raises:
        ValueError: naming the parameter, the text and the expected type.
    """
    if not is_settable(param.annotation):
        raise ValueError(f"parameter {param.name} takes a {describe(param.annotation)}: set it from Python")
    members = _members(param.annotation)
    if _NONE in members and raw.strip().lower() == "none":
        return None
    for member in members:
        if member is _NONE:
            continue
        try:
            return _parse_one(raw.strip(), member)
        except ValueError:
            continue
    raise ValueError(f"parameter {param.name}: cannot read {raw!r} as {describe(param.annotation)}")


def check_value(param: Param, value: Any) -> Any:
    """``value`` (from a config or Python) checked against ``param``'s type; text is parsed.

    Integers are accepted for floats and lists for tuples. Values of Python-only types pass unchecked.

    Raises:
        ValueError: naming the parameter, the value and the expected type.
    """
    if isinstance(value, str) and is_settable(param.annotation) and str not in _members(param.annotation):
        value = parse_text(param, value)
        check_range(param, value)
        return value
    if not is_settable(param.annotation):
        return value
    for member in _members(param.annotation):
        ok, converted = _check_one(value, member)
        if ok:
            check_range(param, converted)
            return converted
    raise ValueError(
        f"parameter {param.name}: expected {describe(param.annotation)}, got {value!r} ({type(value).__name__})"
    )


def _check_one(value: Any, annotation: Any) -> tuple[bool, Any]:
    if annotation is _NONE:
        return value is None, None
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
            return True, float(value)
        return False, None
    if annotation is str:
        return isinstance(value, str), value
    if typing.get_origin(annotation) is Literal:
        return value in _args(annotation), value
    if typing.get_origin(annotation) is tuple and isinstance(value, (list, tuple)):
        element = _args(annotation)[0]
        checked = [_check_one(v, element) for v in value]
        if all(ok for ok, _ in checked):
            return True, tuple(v for _, v in checked)
    return False, None
