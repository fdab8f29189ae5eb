"""Plots shared by ``vidattack attack --out`` and campaign reports (matplotlib, Agg backend).

* :func:`frame_grid`: rows of clean / adversarial / amplified-perturbation frames.
* :func:`success_vs_queries`: success rate as a function of the query budget (V-BAD Fig. 4 style).
* :func:`distortion_vs_queries`: median distortion of the best adversarial so far against queries.
* :func:`flicker_curves`: per-frame RGB offsets against the frame index (Flickering Fig. 9 style).
* :func:`frame_profile`: per-frame perturbation size and per-frame labels (Sparse l2,1 Fig. 1/4 style).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from vidattack.curves import DISTORTIONS, median_distortion_curve, query_grid  # noqa: E402
from vidattack.result import TracePoint  # noqa: E402

__all__ = [
    "frame_grid",
    "success_vs_queries",
    "distortion_vs_queries",
    "trace_curve",
    "flicker_curves",
    "frame_profile",
    "amplify",
]


def _save(figure: plt.Figure, path: str | Path) -> Path:
    """Lay out, write as PNG and close ``figure``; return the path."""
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def amplify(delta: Tensor) -> Tensor:
    """Map a perturbation ``[T,C,H,W]`` to a viewable image in [0, 1]: 0.5 + delta scaled to fill the range."""
    scale = float(delta.abs().max())
    if scale == 0:
        return torch.full_like(delta, 0.5)
    return (0.5 + 0.5 * delta / scale).clamp(0, 1)


def _image(frame: Tensor) -> np.ndarray:
    array = frame.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[2] == 1 else array


def frame_grid(
    clean: Tensor,
    adversarial: Tensor,
    path: str | Path,
    *,
    max_frames: int = 8,
    title: str | None = None,
    frames: Sequence[int] | None = None,
    column_titles: Sequence[str] | None = None,
) -> Path:
    """Save a PNG with three rows: clean frames, adversarial frames, amplified perturbation.

    Args:
        clean, adversarial: ``[T, C, H, W]`` in [0, 1].
        path: the PNG to write (its parent must exist).
        max_frames: frames shown, spread uniformly over T (when ``frames`` is not given).
        frames: the frame indices to show, in this order (e.g. a sparse attack's perturbed frames).
        column_titles: one title per shown frame (default ``t=INDEX``).
    """
    if frames is None:
        count = clean.shape[0]
        chosen = np.unique(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int))
    else:
        chosen = np.asarray([int(index) for index in frames], dtype=int)
        if chosen.size == 0 or chosen.min() < 0 or chosen.max() >= clean.shape[0]:
            raise ValueError(f"frames must be non-empty indices in [0, {clean.shape[0]}), got {list(frames)}")
    if column_titles is not None and len(column_titles) != len(chosen):
        raise ValueError(f"column_titles needs one title per shown frame ({len(chosen)}), got {len(column_titles)}")
    delta = (adversarial - clean).detach()
    shown = amplify(delta)
    rows = [("clean", clean), ("adversarial", adversarial), (f"perturbation x{_gain(delta):.0f}", shown)]
    figure, axes = plt.subplots(3, len(chosen), figsize=(1.6 * len(chosen), 5.2), squeeze=False)
    for row, (name, video) in enumerate(rows):
        for column, index in enumerate(chosen):
            axis = axes[row][column]
            axis.imshow(_image(video[index]), interpolation="nearest", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(column_titles[column] if column_titles is not None else f"t={index}", fontsize=8)
            if column == 0:
                axis.set_ylabel(name, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    return _save(figure, path)


def _gain(delta: Tensor) -> float:
    scale = float(delta.abs().max())
    return 0.5 / scale if scale > 0 else 1.0


def success_vs_queries(
    curves: dict[str, Sequence[list[TracePoint]]],
    path: str | Path,
    *,
    max_queries: int | None = None,
    title: str = "Success rate vs. query budget",
    xlabel: str = "queries",
) -> Path:
    """Plot, per method, the share of videos whose attack succeeded within each query budget.

    Args:
        curves: method name -> per-video traces; a video counts as successful at the first trace point
            whose success flag is set, at that point's query count.
        max_queries: right end of the x axis (default: the largest query count seen).
        xlabel: the x axis label (``"iterations"`` for white-box traces).
    """
    figure, axis = plt.subplots(figsize=(6, 4))
    right = max_queries or 1
    for name, traces in curves.items():
        firsts = [next((q for q, _, ok in trace if ok), None) for trace in traces]
        reached = sorted(q for q in firsts if q is not None)
        if not traces:
            continue
        if max_queries is None and reached:
            right = max(right, reached[-1])
        xs = [0] + [q for q in reached]
        ys = [0.0] + [(i + 1) / len(traces) for i in range(len(reached))]
        axis.step(xs + [right], ys + [ys[-1]], where="post", label=f"{name} (n={len(traces)})")
    axis.set_xlim(0, right)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("success rate")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def distortion_vs_queries(
    curves: dict[str, Sequence[Sequence[Sequence[float]]]],
    path: str | Path,
    *,
    max_queries: int,
    distortion: str = "linf",
    eps: float | None = None,
    title: str = "Distortion vs. queries",
) -> Path:
    """Plot, per method, the (lower) median over videos of the best adversarial's distortion per query count.

    Args:
        curves: method name -> per-video distortion traces (``(queries, L-inf, MAP)`` points, see
            :data:`vidattack.result.DistortionPoint`).
        max_queries: right end of the x axis (the budget).
        distortion: ``"linf"`` or ``"map"`` (:data:`vidattack.curves.DISTORTIONS`).
        eps: draw the L-inf bound as a horizontal line (``distortion="linf"`` only).

    A method's line starts where at least half its videos have an adversarial video (the median is
    infinite before); the y axis is logarithmic, since the distortion falls by orders of magnitude.
    """
    if distortion not in DISTORTIONS:
        raise ValueError(f"distortion must be one of {sorted(DISTORTIONS)}, got {distortion!r}")
    column, ylabel = DISTORTIONS[distortion]
    grid = query_grid(max_queries)
    figure, axis = plt.subplots(figsize=(6, 4))
    plotted = False
    for name, traces in curves.items():
        ys = np.array(median_distortion_curve(traces, grid, column), dtype=float)
        finite = np.isfinite(ys) & (ys > 0)
        if not finite.any():
            continue
        ys[~finite] = np.nan  # matplotlib leaves gaps at NaN
        axis.step(grid, ys, where="post", label=f"{name} (n={len(traces)})")
        plotted = True
    if eps is not None and distortion == "linf":
        axis.axhline(eps, color="grey", ls="--", lw=1, label=f"eps = {eps:g}")
        plotted = True
    if plotted:
        axis.set_yscale("log")
        axis.legend(loc="upper right", fontsize=8)
    axis.set_xlim(0, max(max_queries, 1))
    axis.set_xlabel("queries")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3, which="both")
    return _save(figure, path)


def trace_curve(
    trace: Sequence[TracePoint], path: str | Path, *, xlabel: str = "queries", title: str = "Attack trace"
) -> Path:
    """Plot one video's attack trace: the attack's loss or top-1 probability against queries (or iterations).

    Args:
        trace: ``(queries or iterations, loss or probability, success)`` points, as in
            :attr:`vidattack.result.AttackResult.trace`; the first successful point is marked.
        xlabel: ``"queries"`` (black-box) or ``"iterations"`` (white-box).
    """
    figure, axis = plt.subplots(figsize=(6, 3.5))
    xs = [point[0] for point in trace]
    axis.plot(xs, [point[1] for point in trace], color="tab:blue", lw=1.2)
    first = next((point for point in trace if point[2]), None)
    if first is not None:
        axis.axvline(first[0], color="tab:red", ls="--", lw=1, label=f"adversarial at {first[0]:g}")
        axis.legend(loc="best", fontsize=8)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("loss / top-1 probability")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    return _save(figure, path)


def flicker_curves(offsets: Tensor, path: str | Path, *, title: str = "Flicker RGB offsets") -> Path:
    """Plot per-frame RGB offsets ``[T, 3]`` (as % of the value range) against the frame index."""
    values = offsets.detach().cpu().float().numpy() * 100
    figure, axis = plt.subplots(figsize=(6, 3))
    for channel, colour in enumerate(("red", "green", "blue")[: values.shape[1]]):
        axis.plot(values[:, channel], color=colour, marker=".", label=colour[0].upper())
    axis.axhline(0, color="black", linewidth=0.5)
    axis.set_xlabel("frame")
    axis.set_ylabel("offset [% of range]")
    axis.set_title(title)
    axis.legend(fontsize=8)
    return _save(figure, path)


def frame_profile(
    per_frame_map: Tensor,
    path: str | Path,
    *,
    clean_labels: Tensor | None = None,
    adv_labels: Tensor | None = None,
    title: str = "Per-frame perturbation",
) -> Path:
    """Bar plot of per-frame MAP ``[T]`` with optional per-frame predicted labels of clean/adversarial."""
    values = per_frame_map.detach().cpu().float().numpy()
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.bar(np.arange(len(values)), values, color="tab:purple")
    axis.set_xlabel("frame")
    axis.set_ylabel("MAP (0-255)")
    axis.set_title(title)
    if clean_labels is not None and adv_labels is not None:
        for index, (before, after) in enumerate(zip(clean_labels.tolist(), adv_labels.tolist(), strict=True)):
            colour = "red" if before != after else "black"
            axis.annotate(f"{before}>{after}", (index, 0), xytext=(0, -24), textcoords="offset points",
                          ha="center", fontsize=6, color=colour, rotation=90)
    return _save(figure, path)
