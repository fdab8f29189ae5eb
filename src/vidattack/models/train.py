"""Training and evaluation of classifiers on tensors or datasets.

Data come as ``(inputs, labels)`` tensors (``inputs`` ``[N, T, C, H, W]`` videos or ``[N, C, H, W]``
images, float in [0, 1]; ``labels`` ``long[N]``), as an object with ``.videos`` and ``.labels`` (a
synthetic test-bed split), or as a ``torch.utils.data.Dataset`` of ``(input, label)`` pairs.

Training is deterministic given ``seed``: shuffling and augmentation draw from a ``torch.Generator``
and dropout runs under a forked global RNG state, so the caller's global RNG is left untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TrainReport", "train", "evaluate", "predict", "translate_augment", "video_frames", "Data"]

Data = Any  # (inputs, labels) tensors | object with .videos/.labels | Dataset of (input, label)
Augment = Callable[[Tensor, torch.Generator], Tensor]


@dataclass
class TrainReport:
    """What :func:`train` did.

    Attributes:
        best_val_accuracy: validation accuracy of the kept weights (None without validation data).
        best_epoch: 1-based epoch whose weights were kept (the last one without validation data).
        epochs: epochs run.
        seconds: wall-clock training time.
        history: one dict per epoch: ``epoch``, ``train_loss``, ``train_accuracy``, ``val_accuracy``,
            ``lr`` (at the end of the epoch), ``seconds``.
    """

    best_val_accuracy: float | None
    best_epoch: int
    epochs: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Batches:
    """Uniform batch access to the three accepted data forms."""

    def __init__(self, data: Data, name: str) -> None:
        self.inputs: Tensor | None = None
        self.labels: Tensor | None = None
        self.dataset: Any = None
        if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
            inputs, labels = data
        elif hasattr(data, "videos") and hasattr(data, "labels"):
            inputs, labels = data.videos, data.labels
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            self.dataset = data
            self.size = len(data)
            return
        else:
            raise ValueError(
                f"{name} must be (inputs, labels) tensors, an object with .videos and .labels, or a Dataset, "
                f"got {type(data).__name__}"
            )
        if not isinstance(inputs, Tensor) or not inputs.is_floating_point() or inputs.dim() not in (4, 5):
            raise ValueError(
                f"{name} inputs must be float [N, T, C, H, W] or [N, C, H, W], got {_describe(inputs)}"
            )
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.shape[0] != inputs.shape[0] or labels.is_floating_point():
            raise ValueError(
                f"{name} labels must be integers of shape [{inputs.shape[0]}], got {_describe(labels)}"
            )
        self.inputs, self.labels, self.size = inputs, labels.long(), inputs.shape[0]

    def get(self, index: Tensor) -> tuple[Tensor, Tensor]:
        if self.inputs is not None and self.labels is not None:
            return self.inputs[index], self.labels[index]
        pairs = [self.dataset[int(i)] for i in index]
        inputs = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        labels = torch.as_tensor([int(p[1]) for p in pairs], dtype=torch.long)
        return inputs, labels


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def translate_augment(max_shift: int = 2, brightness: float = 0.1) -> Augment:
    """Augmentation that keeps motion intact: one random translation and brightness per sample.

    Every frame of a clip is shifted by the same ``(dy, dx)`` in ``[-max_shift, max_shift]`` (edge
    replicated) and scaled by one factor in ``[1 - brightness, 1 + brightness]``, then clipped to
    [0, 1]. No flips: a mirrored "moves left" clip is a "moves right" clip.

    Returns:
        ``augment(batch, generator) -> batch`` for ``[B, T, C, H, W]`` or ``[B, C, H, W]`` batches.
    """

    def augment(batch: Tensor, generator: torch.Generator) -> Tensor:
        b = batch.shape[0]
        out = batch
        if max_shift > 0:
            h, w = batch.shape[-2:]
            flat = batch.reshape(b, -1, h, w)
            padded = F.pad(flat, (max_shift,) * 4, mode="replicate")
            offsets = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=generator)
            out = torch.stack(
                [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())]
            ).reshape(batch.shape)
        if brightness > 0:
            scale = 1 + (torch.rand(b, generator=generator) * 2 - 1) * brightness
            out = out * scale.view(b, *([1] * (batch.dim() - 1))).to(out.dtype)
        return out.clamp(0.0, 1.0)

    return augment


def video_frames(
    videos: Tensor, labels: Tensor, per_clip: int | None = None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Frames of clips as an image data set: ``([M, C, H, W], long[M])``, each frame with its clip's label.

    Args:
        videos: ``[N, T, C, H, W]`` clips.
        labels: ``[N]`` per-clip labels (e.g. the test bed's appearance labels).
        per_clip: frames drawn (without replacement) from each clip; None takes all ``T`` frames.
        generator: the random source for the draw.
    """
    if videos.dim() != 5 or labels.shape[:1] != videos.shape[:1]:
        raise ValueError(
            "videos must be [N, T, C, H, W] with one label each, "
            f"got {_describe(videos)}, {_describe(labels)}"
        )
    n, t = videos.shape[:2]
    if per_clip is None or per_clip >= t:
        return videos.flatten(0, 1), labels.repeat_interleave(t)
    if per_clip < 1:
        raise ValueError(f"per_clip must be >= 1, got {per_clip}")
    picks = torch.stack([torch.randperm(t, generator=generator)[:per_clip] for _ in range(n)])
    rows = torch.arange(n).unsqueeze(1)
    return videos[rows, picks].flatten(0, 1), labels.repeat_interleave(per_clip)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def train(
    model: nn.Module,
    train_data: Data,
    val_data: Data | None = None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    weight_decay: float = 0.0,
    augment: Augment | None = None,
    cosine: bool = True,
    grad_clip: float | None = None,
    eval_batch_size: int = 128,
) -> TrainReport:
    """Train ``model`` with Adam and cross-entropy; keep the weights of the best validation epoch.

    Args:
        model: a classifier (``VideoClassifier`` or ``ImageBackbone``) mapping a batch of inputs in
            [0, 1] to logits ``[B, K]``; trained in place and left in eval mode on ``device``.
        train_data, val_data: see the module docstring (videos or images, with labels).
        epochs: passes over ``train_data``.
        lr: Adam learning rate (annealed to 0 on a cosine schedule when ``cosine``).
        batch_size: training batch size.
        seed: seeds shuffling, augmentation and dropout; the same seed gives the same weights (on the
            same device and thread count).
        device: where to train (default: where the model is).
        progress: show a tqdm progress bar.
        weight_decay: Adam L2 penalty.
        augment: ``augment(batch, generator) -> batch`` applied to each training batch (e.g.
            :func:`translate_augment`), or None.
        cosine: cosine learning-rate annealing over all steps.
        grad_clip: clip the gradient's global L2 norm to this value (helps vanilla RNNs), or None.
        eval_batch_size: batch size for validation.

    Returns:
        A :class:`TrainReport`.
    """
    from tqdm.auto import tqdm

    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    source = _Batches(train_data, "train_data")
    if source.size == 0:
        raise ValueError("train_data is empty")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (source.size + batch_size - 1) // batch_size
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
        if cosine
        else None
    )
    best_state: dict[str, Tensor] | None = None
    best_accuracy: float | None = None
    best_epoch = epochs
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    # Dropout draws from the global RNG; fork it so training is seeded without changing the caller's state.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            order = torch.randperm(source.size, generator=generator)
            total_loss, correct, seen = 0.0, 0, 0
            bar = tqdm(
                range(steps_per_epoch),
                desc=f"epoch {epoch}/{epochs}",
                disable=not progress,
                leave=False,
                unit="batch",
            )
            for step in bar:
                index = order[step * batch_size : (step + 1) * batch_size]
                inputs, labels = source.get(index)
                if augment is not None:
                    inputs = augment(inputs, generator)
                inputs, labels = inputs.to(device), labels.to(device)
                logits = model(inputs)
                loss = F.cross_entropy(logits, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total_loss += float(loss.detach()) * labels.shape[0]
                correct += int((logits.argmax(1) == labels).sum())
                seen += labels.shape[0]
                bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
            bar.close()
            record: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": total_loss / seen,
                "train_accuracy": correct / seen,
                "val_accuracy": None,
                "lr": optimizer.param_groups[0]["lr"],
            }
            if val_data is not None:
                accuracy = evaluate(model, val_data, batch_size=eval_batch_size)["accuracy"]
                record["val_accuracy"] = accuracy
                if best_accuracy is None or accuracy > best_accuracy:
                    best_accuracy, best_epoch = accuracy, epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            record["seconds"] = time.perf_counter() - epoch_start
            history.append(record)
            if progress:
                val = "" if record["val_accuracy"] is None else f" val_acc={record['val_accuracy']:.3f}"
                tqdm.write(
                    f"epoch {epoch}/{epochs}: loss={record['train_loss']:.4f} "
                    f"train_acc={record['train_accuracy']:.3f}{val} ({record['seconds']:.1f}s)"
                )
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainReport(
        best_val_accuracy=best_accuracy,
        best_epoch=best_epoch,
        epochs=epochs,
        seconds=time.perf_counter() - started,
        history=history,
    )


def _batches(data: Data, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Consecutive ``(inputs, labels)`` batches of ``data``, which may also be an iterable of pairs."""
    is_pairs = isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor)
    indexable = (
        is_pairs or hasattr(data, "videos") or (hasattr(data, "__getitem__") and hasattr(data, "__len__"))
    )
    if indexable:
        source = _Batches(data, "data")
        for start in range(0, source.size, batch_size):
            yield source.get(torch.arange(start, min(start + batch_size, source.size)))
        return
    if not isinstance(data, Iterable):
        raise ValueError(
            f"data must be tensors, a Dataset or an iterable of (input, label), got {type(data).__name__}"
        )
    # A stream such as VideoFolderDataset.iter_valid(): decoded one item at a time, never all in memory.
    inputs: list[Tensor] = []
    labels: list[int] = []
    for item, label in data:
        inputs.append(torch.as_tensor(item))
        labels.append(int(label))
        if len(inputs) == batch_size:
            yield torch.stack(inputs), torch.tensor(labels, dtype=torch.long)
            inputs, labels = [], []
    if inputs:
        yield torch.stack(inputs), torch.tensor(labels, dtype=torch.long)


@torch.no_grad()
def predict(model: nn.Module, data: Data, batch_size: int = 128) -> tuple[Tensor, Tensor]:
    """Top-1 predictions and labels (both ``long[N]``, on CPU) of ``model`` over ``data``, in eval mode.

    ``data`` may be any form :func:`train` accepts, or an iterable of ``(input, label)`` pairs
    (e.g. ``VideoFolderDataset.iter_valid()``), consumed in batches.
    """
    device = _model_device(model)
    was_training = model.training
    model.eval()
    predictions, labels = [], []
    try:
        for inputs, target in _batches(data, batch_size):
            predictions.append(model(inputs.to(device)).argmax(1).cpu())
            labels.append(target.cpu())
    finally:
        model.train(was_training)
    if not predictions:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(predictions), torch.cat(labels)


def evaluate(
    model: nn.Module, data: Data, batch_size: int = 128, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Top-1 accuracy of ``model`` on ``data``, overall and per class.

    Args:
        model: a classifier of inputs in [0, 1] (evaluated in eval mode; its mode is restored).
        data: see the module docstring.
        batch_size: inference batch size.
        class_names: names for the per-class table (default: the model's ``class_names``, else indices).

    Returns:
        ``{"accuracy": float, "n": int, "correct": int, "per_class": {name: accuracy},
        "per_class_n": {name: count}}``; classes absent from ``data`` are left out of the per-class dicts.
    """
    predictions, labels = predict(model, data, batch_size)
    if labels.numel() == 0:
        raise ValueError("data is empty: nothing to evaluate")
    names = class_names if class_names is not None else getattr(model, "class_names", None)
    correct = predictions == labels
    per_class: dict[str, float] = {}
    per_class_n: dict[str, int] = {}
    for label in sorted(set(labels.tolist())):
        mask = labels == label
        name = str(names[label]) if names is not None and label < len(names) else str(label)
        per_class[name] = float(correct[mask].float().mean())
        per_class_n[name] = int(mask.sum())
    n = int(labels.numel())
    return {
        "accuracy": float(correct.float().mean()),
        "n": n,
        "correct": int(correct.sum()),
        "per_class": per_class,
        "per_class_n": per_class_n,
    }
