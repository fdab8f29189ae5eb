"""Which clips a model gets right: the papers attack only correctly classified videos."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["predict", "correctly_classified", "first_correct_per_class"]


@torch.no_grad()
def predict(model: Callable[[Tensor], Tensor], videos: Tensor, *, batch_size: int = 64) -> Tensor:
    """Top-1 predictions ``long[N]`` (on the CPU) of ``model`` on ``videos [N,T,C,H,W]``, in batches."""
    if isinstance(model, nn.Module):
        model.eval()
    predict_fn = getattr(model, "predict", None)  # a WhiteBox predicts directly
    outputs = []
    for start in range(0, videos.shape[0], batch_size):
        chunk = videos[start : start + batch_size]
        outputs.append((predict_fn(chunk) if callable(predict_fn) else model(chunk).argmax(1)).cpu())
    return torch.cat(outputs) if outputs else torch.zeros(0, dtype=torch.long)


def correctly_classified(
    model: Callable[[Tensor], Tensor], videos: Tensor, labels: Tensor, *, batch_size: int = 64
) -> Tensor:
    """``bool[N]``: which ``videos [N,T,C,H,W]`` the model classifies as their ``labels``."""
    return predict(model, videos, batch_size=batch_size) == labels.reshape(-1).cpu()


def first_correct_per_class(
    model: Callable[[Tensor], Tensor], videos: Tensor, labels: Tensor, per_class: int = 1
) -> Tensor:
    """Indices (sorted) of the first ``per_class`` correctly classified videos of each class."""
    correct = correctly_classified(model, videos, labels)
    labels = labels.reshape(-1).cpu()
    chosen: list[int] = []
    for cls in labels.unique().tolist():
        chosen += ((labels == cls) & correct).nonzero().flatten().tolist()[:per_class]
    return torch.tensor(sorted(chosen), dtype=torch.long)
