"""Generalised flickering perturbations (Pony et al. 2021, Sec. 4.4-4.5 and 5.2-5.3).

One ``delta [T, 3]`` is trained for many videos by minimising Eq. 1 over mini-batches:

* **class generalisation** (Sec. 4.4.1): the videos of one class, trained on a training split and
  evaluated on a held-out split (:func:`train_class_flickers` does every class and reports mean/std);
* **universal** (Sec. 4.4.2): the videos of all classes;
* **time-invariant** (Sec. 4.5): a random cyclic shift ``Roll(delta, tau)`` per video and per step
  during training, and the fooling ratio evaluated over *every* shift ``tau`` (:func:`fooling_ratio`
  with ``all_shifts=True``);
* optionally **through the over-the-air channel** (:mod:`vidattack.physical`): expectation over the
  channel's random parameters during training.

Evaluation helpers: :func:`fooling_ratio`, :func:`evaluate_flicker` (fooling ratio, thickness and
roughness of Eq. 10-11), the random baselines of Sec. 5.2 (:func:`random_like`, :func:`baseline_fooling`)
and transfer between models (Sec. 5.3, :func:`transfer_table`).

The fooling ratio is "the percentage of adversarial videos that are successfully misclassified"
(Sec. 3.5) over an evaluation set from which videos the model already misclassifies are excluded
(Sec. 4.2); :func:`correctly_classified` does that filtering.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from vidattack.attacks.flicker import (
    MaskedAdam,
    apply_flicker,
    delta_roughness,
    delta_thickness,
    flicker_margin_loss,
    roll_offsets,
    roughness_reg,
    thickness_reg,
    validate_offsets,
)
from vidattack.result import is_adversarial
from vidattack.selection import correctly_classified
from vidattack.threat import WhiteBox
from vidattack.video import validate_label, validate_video

__all__ = [
    "UniversalFlicker",
    "train_universal_flicker",
    "train_class_flickers",
    "correctly_classified",
    "fooling_ratio",
    "evaluate_flicker",
    "random_like",
    "baseline_fooling",
    "transfer_table",
    "BASELINES",
]

BASELINES = ("uniform", "minmax", "shuffle")


@dataclass(frozen=True)
class UniversalFlicker:
    """A trained generalised flicker perturbation.

    Attributes:
        offsets: ``delta [T, C]`` (float, [0, 1] units = share of the value range).
        mode: ``"universal"``, ``"class"`` or ``"time-invariant"`` (informative).
        eps: the l-inf bound it was trained under (``None``: unbounded).
        history: one dict per epoch: ``epoch``, ``loss`` (mean objective), ``adv_loss``,
            ``train_fooling`` (share of training videos fooled at the step that saw them), ``thickness``,
            ``roughness`` (%), ``seconds``.
        steps: Adam steps taken.
        seconds: training wall time.
        settings: the hyper-parameters used.
    """

    offsets: Tensor
    mode: str
    eps: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def thickness(self) -> float:
        """Thickness of Eq. 10 in % of the range."""
        return float(delta_thickness(self.offsets))

    @property
    def roughness(self) -> float:
        """Roughness of Eq. 11 in % of the range (cyclic)."""
        return float(delta_roughness(self.offsets))


def _as_whitebox(model: WhiteBox | Callable[[Tensor], Tensor]) -> WhiteBox:
    return model if isinstance(model, WhiteBox) else WhiteBox(model)


def _check_data(
    videos: Tensor, labels: Tensor | list[int], model: WhiteBox, name: str = "videos"
) -> tuple[Tensor, Tensor]:
    validate_video(videos, name)
    with torch.no_grad():
        classes = model.logits(videos[:1]).shape[1]
    return videos, validate_label(labels, videos.shape[0], classes, f"{name} labels").to(videos.device)


@torch.no_grad()
def _fooled(
    box: WhiteBox,
    videos: Tensor,
    labels: Tensor,
    offsets: Tensor,
    target: int | None,
    batch_size: int,
) -> Tensor:
    """``bool[N]`` success of ``offsets`` (``[T,C]`` or ``[N,T,C]``) on each video."""
    flags = []
    targets = None
    for start in range(0, videos.shape[0], batch_size):
        chunk = videos[start : start + batch_size]
        offs = offsets if offsets.dim() == 2 else offsets[start : start + batch_size]
        pred = box.predict(apply_flicker(chunk, offs.to(chunk.device, chunk.dtype)))
        if target is not None:
            targets = torch.full_like(pred, target)
        flags.append(is_adversarial(pred, labels[start : start + batch_size], targets).cpu())
    return torch.cat(flags)


@torch.no_grad()
def fooling_ratio(
    model: WhiteBox | Callable[[Tensor], Tensor],
    offsets: Tensor,
    videos: Tensor,
    labels: Tensor | list[int],
    *,
    target: int | None = None,
    all_shifts: bool = False,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Fooling ratio of one ``delta [T, C]`` on ``videos [N,T,C,H,W]`` (Sec. 3.5, 5.2).

    Args:
        target: count a video as fooled only when it lands on this class (targeted); ``None``: any
            wrong class.
        all_shifts: evaluate ``Roll(delta, tau)`` for every ``tau`` in ``0..T-1`` (time invariance,
            Sec. 4.5): each (video, shift) pair is one trial.

    Returns:
        ``{"fooling_ratio": float in [0,1], "n": trials, "fooled": bool[N] (or [T, N] with all_shifts)}``;
        with ``all_shifts`` also ``"per_shift": float[T]`` and ``"worst_shift": float`` (the lowest ratio
        over shifts, i.e. the ratio an attacker with the worst-case start time gets).
    """
    box = _as_whitebox(model)
    validate_offsets(offsets, videos.shape[1])
    if offsets.dim() != 2:
        raise ValueError(f"offsets must be one perturbation [T, C], got shape {tuple(offsets.shape)}")
    videos, labels_t = _check_data(videos, labels, box)
    if not all_shifts:
        fooled = _fooled(box, videos, labels_t, offsets, target, batch_size)
        return {"fooling_ratio": float(fooled.float().mean()), "n": int(fooled.numel()), "fooled": fooled}
    frames = videos.shape[1]
    per_shift = torch.stack(
        [
            _fooled(box, videos, labels_t, roll_offsets(offsets, tau), target, batch_size)
            for tau in range(frames)
        ]
    )
    ratios = per_shift.float().mean(dim=1)
    return {
        "fooling_ratio": float(per_shift.float().mean()),
        "n": int(per_shift.numel()),
        "fooled": per_shift,
        "per_shift": ratios,
        "worst_shift": float(ratios.min()),
    }


def evaluate_flicker(
    model: WhiteBox | Callable[[Tensor], Tensor],
    offsets: Tensor,
    videos: Tensor,
    labels: Tensor | list[int],
    *,
    target: int | None = None,
    all_shifts: bool = False,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Fooling ratio (%), thickness (%) and roughness (%) of ``delta [T, C]`` (Table 1's columns).

    Thickness/roughness are those of ``delta`` itself (Eq. 10-11), the numbers the paper reports for a
    generalised perturbation; the per-video clipped perturbation can only be smaller.
    """
    result = fooling_ratio(
        model, offsets, videos, labels, target=target, all_shifts=all_shifts, batch_size=batch_size
    )
    summary = {
        "fooling_ratio": 100.0 * result["fooling_ratio"],
        "n": result["n"],
        "thickness": float(delta_thickness(offsets)),
        "roughness": float(delta_roughness(offsets)),
        "linf": 100.0 * float(offsets.detach().abs().max()),
    }
    if all_shifts:
        summary["worst_shift_fooling_ratio"] = 100.0 * result["worst_shift"]
        summary["per_shift_fooling_ratio"] = [round(100.0 * float(v), 2) for v in result["per_shift"]]
    return summary


def train_universal_flicker(
    model: WhiteBox | Callable[[Tensor], Tensor],
    videos: Tensor,
    labels: Tensor | list[int],
    *,
    target: int | None = None,
    eps: float | None = None,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-3,
    lam: float = 1.0,
    beta1: float = 0.5,
    beta2: float = 0.5,
    margin: float = 0.05,
    loss_space: str = "probs",
    time_invariant: bool = False,
    channel: Any | None = None,
    init: Tensor | None = None,
    mode: str | None = None,
    generator: torch.Generator | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> UniversalFlicker:
    """Train one ``delta [T, C]`` for all of ``videos [N,T,C,H,W]`` (Eq. 1 over mini-batches, Sec. 4.4).

    Each step draws a mini-batch (a fresh random order every epoch, from ``generator``), computes
    ``lam * (beta1 * D1(delta) + beta2 * D2(delta)) + mean_n l(F(X_n + delta_n), t_n)`` and takes one Adam
    step; with ``eps`` the offsets are clipped to ``[-eps, eps]`` after each step (Sec. 5.2).

    Args:
        model: white-box access (a plain model is wrapped).
        videos, labels: the training set (the paper excludes videos the model misclassifies: filter with
            :func:`correctly_classified` first).
        target: one target class for a class-targeted universal attack (Sec. 4.4.2); ``None`` untargeted.
        eps: l-inf bound ``zeta`` as a share of the value range (0.2 = l_inf 20%); ``None`` unbounded.
        epochs: passes over the training set (the paper does not state its count).
        batch_size: videos per step (Appendix B: 8).
        lr, lam, beta1, beta2, margin, loss_space: as in :func:`vidattack.attacks.flicker.flicker`
            (Appendix B: 1e-3, 1, 0.5, 0.5; margin 0.05; probabilities).
        time_invariant: roll ``delta`` by a random ``tau`` per video and per step (Sec. 4.5).
        channel: a :class:`vidattack.physical.ChannelRanges`; when given, every training video goes
            through a random draw of the over-the-air channel (expectation over transformation). Its own
            random start time already covers ``time_invariant``.
        init: starting ``delta [T, C]`` (default zeros, as in the paper).
        mode: label stored in the result (default from the options).
        generator: all randomness (batch order, shifts, channel draws).
        progress: called with each epoch's history row.

    Returns:
        :class:`UniversalFlicker` with the final ``delta``.
    """
    start_time = time.perf_counter()
    box = _as_whitebox(model)
    videos, labels_t = _check_data(videos, labels, box)
    if eps is not None and not eps > 0:
        raise ValueError(f"eps must be > 0 (a share of the value range) or None, got {eps}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n, frames, channels = videos.shape[:3]
    device = videos.device
    if init is None:
        delta = torch.zeros(1, frames, channels, device=device)
    else:
        validate_offsets(init, frames, "init")
        delta = init.detach().reshape(1, frames, channels).to(device).clone()
    if eps is not None:
        delta.clamp_(-eps, eps)
    optimiser = MaskedAdam(delta, lr=lr)
    targets_all = None if target is None else torch.full((n,), int(target), dtype=torch.long, device=device)
    history: list[dict[str, float]] = []
    steps = 0
    for epoch in range(epochs):
        epoch_start = time.perf_counter()
        order = torch.randperm(n, generator=generator).to(device)
        totals = {"loss": 0.0, "adv_loss": 0.0, "fooled": 0.0}
        for begin in range(0, n, batch_size):
            index = order[begin : begin + batch_size]
            batch, batch_labels = videos[index], labels_t[index]
            batch_targets = None if targets_all is None else targets_all[index]
            params = delta.clone().requires_grad_(True)
            offsets = params[0]
            if channel is not None:
                from vidattack.physical import apply_channel

                draw = channel.sample(index.numel(), generator=generator, frames=frames)
                adversarial = apply_channel(batch, offsets, draw, generator=generator)
            else:
                if time_invariant:
                    shifts = torch.randint(frames, (index.numel(),), generator=generator)
                    offsets = roll_offsets(offsets, shifts)
                adversarial = apply_flicker(batch, offsets)
            logits = box.logits(adversarial)
            adv_loss = flicker_margin_loss(
                logits, batch_labels, batch_targets, margin=margin, space=loss_space
            )
            objective = (
                lam * (beta1 * thickness_reg(params[0]) + beta2 * roughness_reg(params[0])) + adv_loss.mean()
            )
            (grad,) = torch.autograd.grad(objective, params)
            optimiser.step(grad)
            if eps is not None:
                delta.clamp_(-eps, eps)
            steps += 1
            with torch.no_grad():
                fooled = is_adversarial(logits.argmax(1), batch_labels, batch_targets)
            totals["loss"] += float(objective.detach()) * index.numel()
            totals["adv_loss"] += float(adv_loss.detach().sum())
            totals["fooled"] += float(fooled.float().sum())
        row = {
            "epoch": epoch + 1,
            "loss": totals["loss"] / n,
            "adv_loss": totals["adv_loss"] / n,
            "train_fooling": 100.0 * totals["fooled"] / n,
            "thickness": float(delta_thickness(delta[0])),
            "roughness": float(delta_roughness(delta[0])),
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(row)
        if progress is not None:
            progress(row)
    if mode is None:
        mode = "time-invariant" if time_invariant else "universal"
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "lam": lam,
        "beta1": beta1,
        "beta2": beta2,
        "margin": margin,
        "loss_space": loss_space,
        "time_invariant": time_invariant,
        "target": target,
        "channel": None if channel is None else repr(channel),
        "train_videos": n,
    }
    return UniversalFlicker(
        offsets=delta[0].detach().cpu(),
        mode=mode,
        eps=eps,
        history=history,
        steps=steps,
        seconds=time.perf_counter() - start_time,
        settings=settings,
    )


def train_class_flickers(
    model: WhiteBox | Callable[[Tensor], Tensor],
    train_videos: Tensor,
    train_labels: Tensor,
    test_videos: Tensor,
    test_labels: Tensor,
    *,
    classes: list[int] | None = None,
    generator: torch.Generator | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Class generalisation (Sec. 4.4.1): one ``delta`` per class, trained on that class's training
    videos and evaluated on its held-out videos; mean and standard deviation over classes (Table 1).

    Returns:
        ``{"per_class": {c: {"offsets", "fooling_ratio", "thickness", "roughness", "n_train", "n_test"}},
        "fooling_ratio_mean", "fooling_ratio_std", "thickness_mean", ...}`` (ratios and metrics in %).
        Classes without training or test videos are skipped.
    """
    box = _as_whitebox(model)
    train_labels = train_labels.reshape(-1)
    test_labels = test_labels.reshape(-1)
    chosen = sorted(set(train_labels.tolist())) if classes is None else list(classes)
    per_class: dict[int, dict[str, Any]] = {}
    for cls in chosen:
        train_idx = (train_labels == cls).nonzero().squeeze(1)
        test_idx = (test_labels == cls).nonzero().squeeze(1)
        if train_idx.numel() == 0 or test_idx.numel() == 0:
            continue
        trained = train_universal_flicker(
            box,
            train_videos[train_idx],
            train_labels[train_idx],
            mode="class",
            generator=generator,
            **train_kwargs,
        )
        scores = evaluate_flicker(box, trained.offsets, test_videos[test_idx], test_labels[test_idx])
        per_class[cls] = {
            "offsets": trained.offsets,
            "fooling_ratio": scores["fooling_ratio"],
            "thickness": scores["thickness"],
            "roughness": scores["roughness"],
            "n_train": int(train_idx.numel()),
            "n_test": int(test_idx.numel()),
            "seconds": trained.seconds,
        }
    summary: dict[str, Any] = {"per_class": per_class}
    for key in ("fooling_ratio", "thickness", "roughness"):
        values = torch.tensor([row[key] for row in per_class.values()], dtype=torch.float64)
        summary[f"{key}_mean"] = float(values.mean()) if values.numel() else math.nan
        summary[f"{key}_std"] = float(values.std(unbiased=False)) if values.numel() else math.nan
    return summary


def random_like(offsets: Tensor, kind: str, generator: torch.Generator | None = None) -> Tensor:
    """A random flicker with the value range of ``offsets [T, C]`` (Sec. 5.2's baselines).

    * ``"uniform"``: each value ``~ U(min delta, max delta)``;
    * ``"minmax"``: each value ``min delta`` or ``max delta`` with equal probability;
    * ``"shuffle"``: the values of ``delta`` in a random order over frames and channels.
    """
    validate_offsets(offsets)
    flat = offsets.detach().cpu().reshape(-1)
    low, high = float(flat.min()), float(flat.max())
    if kind == "uniform":
        values = low + (high - low) * torch.rand(flat.shape, generator=generator, dtype=flat.dtype)
    elif kind == "minmax":
        pick = torch.rand(flat.shape, generator=generator) < 0.5
        values = torch.where(pick, torch.tensor(high, dtype=flat.dtype), torch.tensor(low, dtype=flat.dtype))
    elif kind == "shuffle":
        values = flat[torch.randperm(flat.numel(), generator=generator)]
    else:
        raise ValueError(f"kind must be one of {', '.join(BASELINES)}, got {kind!r}")
    return values.reshape(offsets.shape).to(offsets.device)


def baseline_fooling(
    model: WhiteBox | Callable[[Tensor], Tensor],
    offsets: Tensor,
    videos: Tensor,
    labels: Tensor | list[int],
    *,
    repeats: int = 10,
    kinds: tuple[str, ...] = BASELINES,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
) -> dict[str, dict[str, Any]]:
    """Fooling ratio (%) of each random baseline of ``offsets``, ``repeats`` draws each (Table 2 rows).

    Returns:
        ``{kind: {"mean": float, "std": float, "values": [float]}}``.
    """
    box = _as_whitebox(model)
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        values = [
            100.0
            * fooling_ratio(
                box, random_like(offsets, kind, generator), videos, labels, batch_size=batch_size
            )["fooling_ratio"]
            for _ in range(repeats)
        ]
        tensor = torch.tensor(values, dtype=torch.float64)
        out[kind] = {"mean": float(tensor.mean()), "std": float(tensor.std(unbiased=False)), "values": values}
    return out


def transfer_table(
    deltas: Mapping[str, Tensor],
    models: Mapping[str, WhiteBox | Callable[[Tensor], Tensor]],
    data: Mapping[str, tuple[Tensor, Tensor]],
    *,
    batch_size: int = 64,
) -> dict[str, dict[str, float]]:
    """Transferability (Sec. 5.3): fooling ratio (%) of the delta trained on model A, applied to model B.

    Args:
        deltas: source model name -> its universal ``delta [T, C]``.
        models: target model name -> model.
        data: target model name -> ``(videos, labels)`` its evaluation set (correctly classified by it).

    Returns:
        ``table[source][target]`` in %.
    """
    table: dict[str, dict[str, float]] = {}
    for source, offsets in deltas.items():
        table[source] = {}
        for name, model in models.items():
            videos, labels = data[name]
            table[source][name] = (
                100.0 * fooling_ratio(model, offsets, videos, labels, batch_size=batch_size)["fooling_ratio"]
            )
    return table
