"""Tell a listener how many clips a model is run on, whoever runs it (for progress bars on long attacks).

A black-box attack's oracle forwards each queried clip once, so on the attacked model the clips run
are the queries spent (give or take an uncounted forward the oracle may make to learn the number of
classes); for a white-box attack they are its forward passes. Counting at the model, rather than in
each attack's oracle, reaches every method without changing any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

__all__ = ["counting_clips"]


class _CountingCallable:
    """A plain callable model (a remote service's client) that reports each call's batch size; every
    other attribute (``num_classes``, ``black_box_only``, ``input_spec``, ...) is the wrapped model's."""

    def __init__(self, model: Callable[[Tensor], Tensor], on_clips: Callable[[int], None]) -> None:
        self._model = model
        self._on_clips = on_clips

    def __call__(self, videos: Tensor) -> Tensor:
        logits = self._model(videos)
        self._on_clips(int(videos.shape[0]))
        return logits

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@contextmanager
def counting_clips(model: Any, on_clips: Callable[[int], None]) -> Iterator[Any]:
    """Yield a model that calls ``on_clips(n)`` after every forward of ``n`` clips ``[n,T,C,H,W]``.

    An ``nn.Module`` is yielded itself, with a forward hook that is removed on exit (gradients, devices
    and ``isinstance`` checks are unaffected); any other callable is wrapped for the duration.
    """
    if isinstance(model, nn.Module):

        def hook(_module: nn.Module, inputs: tuple[Any, ...], _output: Any) -> None:
            if inputs and isinstance(inputs[0], Tensor):
                on_clips(int(inputs[0].shape[0]))

        handle = model.register_forward_hook(hook)
        try:
            yield model
        finally:
            handle.remove()
    else:
        yield _CountingCallable(model, on_clips)
