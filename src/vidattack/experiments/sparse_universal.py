"""A universal sparse perturbation (Wei et al. 2019, Eq. 2; Table 4): learnt on correctly classified
training clips (the user's data, or the test bed for zoo models: :mod:`vidattack.experiments.clips`),
evaluated on held-out test clips, written with its plots. The command is ``vidattack sparse-universal``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vidattack import io, models, viz
from vidattack.attacks.sparse_l21 import DEFAULT_LAMBDA, parse_frame_mask
from vidattack.attacks.sparse_universal import apply_universal, sparse_universal
from vidattack.evaluation.artifacts import safe_child
from vidattack.experiments.clips import correct_clips, data_for
from vidattack.experiments.propagation_plot import plot_propagation
from vidattack.threat import WhiteBox

__all__ = ["run_sparse_universal"]


def run_sparse_universal(
    *, model: str, mask: str, norm: str, lam: float | None, epochs: int, batch_size: int, lr: float,
    lr_end: float = 1.0, eps: float | None, target: int | None, train: int, test: int, frames: int | None,
    seed: int, device: str, out: Path, progress: Callable[[int, float, float], None] | None = None,
    data: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Learn the perturbation, write ``universal.npz``, ``result.json``, ``grid.png`` (and ``profile.png``
    for models with per-frame logits) into ``out``; return the record (with ``files``). ``mask`` is a
    description (``all``, ``first:K``, ``last:K``, ``random:K``, ``frames:1,5,9``); ``progress`` is told
    of each epoch (see :func:`~vidattack.attacks.sparse_universal.sparse_universal`)."""
    if train < 1 or test < 0:
        raise ValueError(f"--train must be >= 1 and --test >= 0, got {train} and {test}")
    data = data_for(model, data)
    net = models.load(model, device=device)
    length = frames or getattr(net, "num_frames", None) or 16
    train_videos, train_labels, train_indices = correct_clips(data, "train", train, net, device, frames=length)
    test_videos, test_labels, test_indices = (
        correct_clips(data, "test", test, net, device, frames=length) if test else (None, None, [])
    )
    if len(train_labels) == 0:
        raise ValueError(f"model {model} classifies none of the train clips of {data} correctly")
    generator = torch.Generator().manual_seed(seed)
    frame_mask = parse_frame_mask(mask, length, generator=generator)
    whitebox = WhiteBox(net)
    result = sparse_universal(
        whitebox, train_videos, train_labels, target=target, eps=eps,
        lam=DEFAULT_LAMBDA if lam is None else lam, norm=norm, mask=frame_mask, epochs=epochs,
        batch_size=batch_size, lr=lr, lr_end=lr_end, test_videos=test_videos if test else None,
        test_label=test_labels if test else None, generator=generator, progress=progress,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "model": model,
        "data": data,
        "frames": length,
        "seed": seed,
        "target": target,
        "lr": lr,
        "lr_end": lr_end,
        "train_indices": train_indices,
        "test_indices": test_indices,
        **result.summary(),
        "history": result.history,
    }
    io.save_npz(
        safe_child(out, "universal.npz"), perturbation=result.perturbation, frame_mask=result.frame_mask
    )
    files = {"perturbation": str(out / "universal.npz")}
    shown = (test_videos if test_videos is not None and len(test_videos) else train_videos)[:1]
    adversarial = apply_universal(result.perturbation, shown)
    viz.frame_grid(
        shown[0].cpu(), adversarial[0].cpu(), safe_child(out, "grid.png"), title="universal perturbation"
    )
    files["grid"] = str(out / "grid.png")
    if getattr(net, "has_frame_logits", callable(getattr(net, "frame_logits", None))):
        plot_propagation(
            whitebox,
            shown,
            adversarial,
            safe_child(out, "profile.png"),
            title=f"{model}: universal {norm}, mask {mask} (labels clean>adv)",
        )
        files["profile"] = str(out / "profile.png")
    record["files"] = files
    safe_child(out, "result.json").write_text(io.json_text(record, indent=2))
    return record
