"""Universal sparse perturbations and the propagation experiments of Wei et al. (AAAI 2019).

* :func:`sparse_universal` -- one perturbation ``E [T,C,H,W]`` for a whole set of training videos (Eq. 2,
  with the temporal mask of Eq. 3 and the target of Eq. 4), evaluated on held-out videos (Table 4).
* :func:`apply_universal` -- the same tensor added to every video (then clipped to [0, 1]).
* :func:`frame_predictions` / :func:`propagation_profile` -- per-frame labels (from the model's per-frame
  logits, ``WhiteBox.frame_logits``) and per-frame MAP of clean and adversarial videos (Fig. 1, 4, 5).
* :func:`propagation_attack` -- "Adversarial video based on propagation": attack the *shortened* video
  made of the first ``N`` frames with the l2 variant of Eq. 1, splice the adversarial frames into the full
  video and check whether the later, clean frames are misclassified too (Fig. 8; cost per iteration in
  Table 2 grows with ``N`` because only ``N`` frames go through the model).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from vidattack.attacks.sparse_l21 import (
    DEFAULT_LAMBDA,
    _check_options,
    _mask_text,
    frame_mask_argument,
    linear_decay,
    regulariser,
    sparse_l21,
    sparse_loss,
)
from vidattack.result import AttackResult, is_adversarial
from vidattack.threat import WhiteBox
from vidattack.video import validate_label, validate_label_and_target, validate_video

__all__ = [
    "UniversalResult",
    "sparse_universal",
    "apply_universal",
    "evaluate_universal",
    "frame_predictions",
    "propagation_profile",
    "propagation_attack",
]


@dataclass(frozen=True)
class UniversalResult:
    """A universal perturbation and how well it fools training and held-out videos (Table 4).

    Attributes:
        perturbation: ``float[T,C,H,W]``, the one tensor ``M . E`` added to every video (zero outside
            the mask).
        frame_mask: ``bool[T]``.
        train_success: ``bool[N_train]`` per training video (untargeted: prediction != label).
        train_fooling: fooling ratio on the training videos.
        test_success: ``bool[N_test]`` on held-out videos, or ``None`` when none were given.
        test_fooling: fooling ratio on the held-out videos (``nan`` when none were given).
        reg: the regulariser of ``perturbation`` (``||E||_{2,1}`` or ``||E||_2``).
        map_255: mean absolute value of ``perturbation`` on the 0-255 scale.
        lam, norm, mask: the settings used.
        epoch: the epoch whose perturbation was kept (best training fooling ratio, then smallest norm).
        history: per epoch ``(epoch, mean objective, training fooling ratio)``.
        seconds: wall time.
    """

    perturbation: Tensor
    frame_mask: Tensor
    train_success: Tensor
    train_fooling: float
    test_success: Tensor | None
    test_fooling: float
    reg: float
    map_255: float
    lam: float
    norm: str
    mask: str
    epoch: int
    history: list[tuple[int, float, float]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-friendly scalars (for the CLI's ``result.json``)."""
        return {
            "train_fooling": self.train_fooling,
            "test_fooling": None if math.isnan(self.test_fooling) else self.test_fooling,
            "n_train": int(self.train_success.numel()),
            "n_test": 0 if self.test_success is None else int(self.test_success.numel()),
            "reg": self.reg,
            "map_255": self.map_255,
            "perturbed_frames": int(self.frame_mask.sum()),
            "frames": int(self.frame_mask.numel()),
            "lam": self.lam,
            "norm": self.norm,
            "mask": self.mask,
            "epoch": self.epoch,
            "seconds": round(self.seconds, 3),
        }


def apply_universal(perturbation: Tensor, videos: Tensor) -> Tensor:
    """``clamp(videos + E, 0, 1)``: the one perturbation ``E [T,C,H,W]`` (or ``[1,T,C,H,W]``) on every video.

    Raises:
        ValueError: ``videos`` is not ``[N,T,C,H,W]`` in [0, 1] or ``E`` does not match its ``[T,C,H,W]``.
    """
    validate_video(videos, "videos")
    delta = perturbation.reshape(1, *perturbation.shape[-4:]) if perturbation.dim() in (4, 5) else None
    if delta is None or (perturbation.dim() == 5 and perturbation.shape[0] != 1):
        raise ValueError(
            f"perturbation must have shape [T,C,H,W] or [1,T,C,H,W], got {tuple(perturbation.shape)}"
        )
    if delta.shape[1:] != videos.shape[1:]:
        raise ValueError(
            f"perturbation shape {tuple(delta.shape[1:])} does not match the videos' [T,C,H,W] "
            f"{tuple(videos.shape[1:])}"
        )
    return (videos + delta.to(videos.device, videos.dtype)).clamp(0.0, 1.0)


def evaluate_universal(
    model: WhiteBox,
    perturbation: Tensor,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    batch_size: int = 32,
) -> Tensor:
    """``bool[N]``: which ``videos`` the universal ``perturbation`` fools (or sends to ``target``)."""
    n = videos.shape[0]
    labels = validate_label(label, n)
    targets = None if target is None else validate_label(target, n, name="target")
    preds = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            preds.append(
                model.predict(apply_universal(perturbation, videos[start : start + batch_size])).cpu()
            )
    return is_adversarial(torch.cat(preds), labels, targets)


def sparse_universal(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float | None = None,
    lam: float = DEFAULT_LAMBDA,
    norm: str = "l21",
    mask: Tensor | Sequence[int] | None = None,
    epochs: int = 40,
    batch_size: int = 16,
    lr: float = 0.01,
    lr_end: float = 1.0,
    init: float = 1e-4,
    test_videos: Tensor | None = None,
    test_label: Tensor | int | list[int] | None = None,
    generator: torch.Generator | None = None,
    progress: Callable[[int, float, float], None] | None = None,
) -> UniversalResult:
    """Universal sparse perturbation (Wei et al. 2019, Eq. 2; with the mask of Eq. 3 / target of Eq. 4).

    Minimises ``lam * ||M . E||_{2,1} + (1/N) sum_i l(1_{y_i}, J(clamp(X_i + M . E)))`` over one ``E`` for
    all training ``videos`` with Adam on shuffled mini-batches (the loss of :func:`sparse_l21`:
    ``-log(1 - p_y)`` untargeted, cross-entropy targeted).

    Args:
        model: white-box access.
        videos: training clips ``[N,T,C,H,W]`` in [0, 1] (the paper's training set); not modified.
        label: their true classes.
        target: one target class for all videos (or per video), ``None`` for untargeted.
        eps: optional L-inf bound on ``E`` (not in the paper).
        lam, norm, mask, lr, init: as in :func:`sparse_l21` (Sec. "Training": Adam, init 1e-4).
        epochs: passes over the training videos (the paper gives no number).
        batch_size: videos per Adam step.
        lr_end: final learning rate as a fraction of ``lr``, reached linearly over the run (1.0, the
            default: constant, as the Table 4 runs measured). With a constant step Adam keeps every
            coordinate moving by about ``lr`` per step, so frames the l2,1 term pulls to zero oscillate
            around it instead of settling (``sparse_l21`` decays to 0.05 for this reason).
        test_videos, test_label: held-out clips on which the final ``E`` is evaluated (Table 4).
        generator: shuffling of the mini-batches and ``random:K`` masks.
        progress: called after each epoch with ``(epoch, mean objective, training fooling ratio)``.

    Returns:
        :class:`UniversalResult`; the kept ``E`` is the end-of-epoch iterate with the best training fooling
        ratio (ties: the smaller regulariser).
    """
    start_time = time.perf_counter()
    if not isinstance(model, WhiteBox):
        raise ValueError(
            "sparse_universal needs white-box access: pass vidattack.WhiteBox(model), "
            f"got {type(model).__name__}"
        )
    validate_video(videos, "videos")
    _check_options(lam=lam, norm=norm, steps=epochs, lr=lr, lr_end=lr_end, init=init, keep="last", eps=eps)
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n, t = videos.shape[:2]
    num_classes = model.num_classes(videos)
    labels, targets = validate_label_and_target(label, target, n, num_classes)
    labels, targets = labels.to(videos.device), None if targets is None else targets.to(videos.device)
    if test_videos is not None:
        validate_video(test_videos, "test_videos")
        if test_videos.shape[1:] != videos.shape[1:]:
            raise ValueError(
                f"test_videos must have the training videos' [T,C,H,W] {tuple(videos.shape[1:])}, "
                f"got {tuple(test_videos.shape[1:])}"
            )
        if test_label is None:
            raise ValueError("test_label is required with test_videos")
    frame_mask = frame_mask_argument(mask, t)
    full_mask = frame_mask.to(videos.device, videos.dtype).reshape(1, t, 1, 1, 1)

    delta = _bound(torch.full((1, *videos.shape[1:]), init, device=videos.device) * full_mask, eps)
    delta.requires_grad_(True)
    optimiser = torch.optim.Adam([delta], lr=lr)
    schedule = linear_decay(optimiser, epochs * math.ceil(n / batch_size), lr_end)
    best: Tensor | None = None
    best_key = (-1.0, -math.inf)
    best_epoch = 0
    history: list[tuple[int, float, float]] = []
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator).to(videos.device)
        total = 0.0
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            perturbation = delta * full_mask
            adversarial = (videos[index] + perturbation).clamp(0.0, 1.0)
            logits = model.logits(adversarial)
            chosen_targets = None if targets is None else targets[index]
            objective = (
                lam * regulariser(perturbation, norm)[0]
                + sparse_loss(logits, labels[index], chosen_targets).mean()
            )
            optimiser.zero_grad(set_to_none=True)
            objective.backward()
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                delta.copy_(_bound(delta * full_mask, eps))
            total += float(objective.detach()) * len(index)
        current = (delta.detach() * full_mask)[0]
        success = evaluate_universal(model, current, videos, labels, target=targets, batch_size=batch_size)
        fooling = float(success.float().mean())
        reg = float(regulariser(current.unsqueeze(0), norm)[0])
        history.append((epoch, total / n, fooling))
        if progress is not None:
            progress(epoch, total / n, fooling)
        key = (fooling, -reg)
        if key > best_key:
            best, best_key, best_epoch = current.clone(), key, epoch
    assert best is not None
    train_success = evaluate_universal(model, best, videos, labels, target=targets, batch_size=batch_size)
    test_success = None
    if test_videos is not None:
        test_targets = None if target is None else _expand_target(target, test_videos.shape[0], num_classes)
        test_success = evaluate_universal(
            model, best, test_videos, validate_label(test_label, test_videos.shape[0], num_classes),
            target=test_targets, batch_size=batch_size,
        )  # fmt: skip
    return UniversalResult(
        perturbation=best.cpu(),
        frame_mask=frame_mask,
        train_success=train_success,
        train_fooling=float(train_success.float().mean()),
        test_success=test_success,
        test_fooling=math.nan if test_success is None else float(test_success.float().mean()),
        reg=float(regulariser(best.unsqueeze(0), norm)[0]),
        map_255=float(best.abs().mean() * 255),
        lam=lam,
        norm=norm,
        mask=_mask_text(mask, frame_mask),
        epoch=best_epoch,
        history=history,
        seconds=time.perf_counter() - start_time,
    )


def _expand_target(target: Tensor | int | list[int], n: int, num_classes: int) -> Tensor:
    flat = torch.as_tensor(target).reshape(-1)
    if flat.numel() != 1:
        raise ValueError("a per-video target cannot be carried over to test_videos: give one target class")
    return validate_label(int(flat[0]), n, num_classes, "target")


def _bound(delta: Tensor, eps: float | None) -> Tensor:
    # A perturbation beyond +-1 cannot change any clipped video further; eps is the optional L-inf bound.
    limit = 1.0 if eps is None else min(1.0, eps)
    return delta.clamp(-limit, limit).detach()


# ------------------------------------------------------------------------------------------- propagation


def frame_predictions(model: WhiteBox, videos: Tensor) -> Tensor:
    """Per-frame predicted labels ``long[N, T]`` from the model's per-frame logits (CNN+RNN models).

    For a recurrent head the label at frame ``t`` is the classifier on the hidden state after frames
    ``0..t`` (the paper's "frame-level labels", Fig. 1 and 4). Raises ``ValueError`` for models without
    per-frame logits.
    """
    validate_video(videos, "videos")
    with torch.no_grad():
        return model.frame_logits(videos).argmax(dim=2).cpu()


def propagation_profile(model: WhiteBox, clean: Tensor, adversarial: Tensor) -> dict[str, Tensor]:
    """Per-frame MAP and per-frame labels of clean and adversarial videos ``[N,T,C,H,W]``.

    Returns:
        ``frame_map float[N,T]`` (mean absolute perturbation per frame, 0-255 scale),
        ``clean_frame_labels`` / ``adv_frame_labels`` ``long[N,T]``.
    """
    validate_video(clean, "clean")
    validate_video(adversarial, "adversarial")
    if clean.shape != adversarial.shape:
        raise ValueError(
            f"clean and adversarial must have the same shape, got {tuple(clean.shape)} and "
            f"{tuple(adversarial.shape)}"
        )
    frame_map = (adversarial - clean).detach().abs().flatten(2).mean(dim=2).cpu() * 255
    return {
        "frame_map": frame_map,
        "clean_frame_labels": frame_predictions(model, clean),
        "adv_frame_labels": frame_predictions(model, adversarial),
    }


def propagation_attack(
    model: WhiteBox,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float | None = None,
    num_frames: int = 8,
    norm: str = "l2",
    lam: float = DEFAULT_LAMBDA,
    steps: int = 300,
    lr: float = 0.01,
    lr_end: float = 0.05,
    init: float = 1e-4,
    keep: str = "last",
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Propagation-based attack (section "Adversarial Video based on Propagation", Fig. 8, Table 2).

    Attacks the shortened video made of the first ``num_frames`` frames with :func:`sparse_l21` (only those
    frames go through the model, so an iteration costs about ``num_frames / T`` of a full one), then
    replaces the first frames of each full video by the adversarial ones; the remaining frames stay clean.
    The paper uses ``N = 20`` of 40 frames and the l2 norm ("In default, we set N = 20 and use l2 norm"),
    because l2,1 makes the first ``N`` frames sparse, which propagates worse; on 16-frame clips the default
    keeps the same half (``N = 8``).

    Success is decided on the *full* spliced video. The model must accept clips of ``num_frames`` frames
    (CNN+RNN models do).

    Returns:
        :class:`AttackResult` of the full videos with ``extras``: ``num_frames``, ``short_success bool[N]``
        (the shortened video was fooled), ``later_frames_fooled float[N]`` (share of the clean frames
        ``t >= num_frames`` whose per-frame label is wrong in the adversarial video, ``nan`` when the model
        has no per-frame logits or no frame is left) and ``later_frames_wrong_clean float[N]`` (the same
        share for the clean video, the baseline), ``seconds_per_iteration``.
    """
    start_time = time.perf_counter()
    if not isinstance(model, WhiteBox):
        raise ValueError(
            "propagation_attack needs white-box access: pass vidattack.WhiteBox(model), "
            f"got {type(model).__name__}"
        )
    validate_video(videos, "videos")
    n, t = videos.shape[:2]
    if not isinstance(num_frames, int) or not 1 <= num_frames <= t:
        raise ValueError(f"num_frames must be an int in [1, {t}], got {num_frames!r}")
    short = sparse_l21(
        model, videos[:, :num_frames], label, target=target, eps=eps, lam=lam, norm=norm, mask=None,
        steps=steps, lr=lr, lr_end=lr_end, init=init, keep=keep, generator=generator,
    )  # fmt: skip
    adversarial = videos.detach().clone()
    adversarial[:, :num_frames] = short.adversarial.to(videos.device)
    with torch.no_grad():
        adv_label = model.predict(adversarial).cpu()
    later_fooled = torch.full((n,), math.nan)
    later_clean = torch.full((n,), math.nan)
    if num_frames < t:
        try:
            clean_frames = frame_predictions(model, videos)[:, num_frames:]
            adv_frames = frame_predictions(model, adversarial)[:, num_frames:]
        except ValueError:
            pass
        else:
            reference = short.label.reshape(-1, 1)
            later_fooled = (adv_frames != reference).float().mean(dim=1)
            later_clean = (clean_frames != reference).float().mean(dim=1)
    seconds = time.perf_counter() - start_time
    return AttackResult(
        adversarial=adversarial,
        success=is_adversarial(adv_label, short.label, short.target),
        queries=torch.zeros(n, dtype=torch.long),
        iterations=short.iterations,
        label=short.label,
        target=short.target,
        adv_label=adv_label,
        seconds=seconds,
        trace=short.trace,
        extras=[
            {
                **short_extras,
                "frame_mask": torch.arange(t) < num_frames,
                "num_frames": num_frames,
                "short_success": bool(short.success[i]),
                "later_frames_fooled": float(later_fooled[i]),
                "later_frames_wrong_clean": float(later_clean[i]),
                "seconds_per_iteration": short.seconds / max(steps + 1, 1),
            }
            for i, short_extras in enumerate(short.extras)
        ],
        method="sparse-prop",
    )
