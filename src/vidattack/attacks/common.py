"""Building blocks shared by the attacks' registry adapters.

* :func:`white_box_adapter` turns a white-box core function ``core(WhiteBox, videos, label, *, target,
  eps, generator, **params)`` into the registry's ``run`` adapter (see :class:`registry.AttackSpec`).
* :func:`testbed_clips` renders (and caches) clips of the synthetic test bed at the attacked videos'
  frame count and size, the attacker's own data for start videos and initial directions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from vidattack.result import AttackResult
from vidattack.threat import WhiteBox

__all__ = ["white_box_adapter", "testbed_clips"]


def white_box_adapter(
    core: Callable[..., AttackResult], *, default_eps: float | None = None
) -> Callable[..., AttackResult]:
    """Registry adapter running ``core`` on ``WhiteBox(model)``.

    ``eps=None`` becomes ``default_eps`` (``None``: passed on as ``None``, the core keeps its own
    default); ``budget`` and ``batch_size`` are ignored (white-box: no queries to budget).
    """

    def run(
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
        return core(
            WhiteBox(model),
            videos,
            label,
            target=target,
            eps=default_eps if eps is None else eps,
            generator=generator,
            **params,
        )

    return run


@functools.lru_cache(maxsize=16)
def testbed_clips(frames: int, size: int, split: str, count: int) -> tuple[Tensor, Tensor]:
    """The first ``count`` clips ``(videos [count,T,C,H,W], labels [count])`` of the synthetic test bed's
    ``split``, rendered with ``frames`` frames of ``size x size`` pixels (cached: callers must not
    modify them in place)."""
    from vidattack.data.synthetic import SynthConfig, generate

    clips = generate(split, SynthConfig(frames=frames, size=size), indices=range(count))
    return clips.videos, clips.labels
