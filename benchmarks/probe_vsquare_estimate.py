"""Probe: how close is vsquare's gradient estimate to the true gradient, and what would exact signs buy?

White-box diagnostics (not an attack: they read the model's gradient) on the clips ``bench_labels_peers.py``
attacks (first correctly classified clip of each class among the split's first 100):

* ``--energy``: the share of the squared gradient of ``log P(label)`` at the clean clip that lies in
  simple subspaces (constant over the clip, constant over runs of 4 frames, constant on 2x2 / 4x4
  pixel tiles, the same in every channel, and products of these), next to the share of the dimensions
  each spans. A share far above the dimension share would be structure a prior could use (Bandits'
  tiles, Ilyas et al. 2019); near it, the gradient looks like noise in that basis. Also the share of
  the squared gradient per temporal frequency (FFT over the frames), per frame and per cell of a 4x4
  grid over the frame;
* otherwise: ``video_square`` untargeted (eps 0.05, 10,000 queries, all clips in one call, the defaults
  unless ``--params``) run per seed in two modes. ``estimate``: as shipped; after every round the
  cosine between the clip's gradient estimate (``guided``) and the true gradient at the current point
  is recorded (mean per window of rounds). ``exact``: the estimate is replaced after every round by
  the true gradient at the current point, so every guided square gets the sign that lowers the loss to
  first order; the search is otherwise the same (the same kinds of squares, sizes and acceptance rule,
  from the same seed), so its query counts show what a better estimate of the same kind could reach.

The probe wraps the attack module's private ``_update`` (the only place a round's state is complete);
it is a diagnostic and follows that function's signature.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_vsquare_estimate.py --models lrcn-synth \
        --split val [--seeds 0] [--modes estimate,exact] [--params '{"frame_signs": 0}'] [--energy]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vidattack import models as zoo
from vidattack.attacks import video_square as square_module
from vidattack.evaluation.diagnostics import true_adversarial_gradient
from vidattack.metrics import gradient_cosine
from vidattack.threat import ScoreOracle, WhiteBox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_labels_peers import chosen_clips  # noqa: E402  (the same clips as the label-only comparison)

#: windows of rounds over which the estimate's cosine is averaged
WINDOWS = ((0, 50), (50, 150), (150, 300), (300, 600), (600, 10_000))


def log_prob_gradient(model: WhiteBox, videos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient of ``log P(labels[i] | videos[i])`` with respect to ``videos [N,T,C,H,W]`` (what the
    attack's estimate estimates: the negated untargeted objective of the library's diagnostics)."""
    with torch.enable_grad():
        return -true_adversarial_gradient(model, videos, labels)


def subspace_energy(grad: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Per subspace: (mean share of ``|grad|^2`` in it over the clips, share of the dimensions it spans).

    ``grad`` is ``[N,T,C,H,W]`` with T divisible by 4 and H, W by 4 (the zoo's 16 x 32 x 32 clips)."""
    n, frames, channels, height, width = grad.shape

    def tiles(z: torch.Tensor, side: int) -> torch.Tensor:
        flat = z.reshape(-1, channels, height, width)
        return F.interpolate(F.avg_pool2d(flat, side), scale_factor=side, mode="nearest").reshape(z.shape)

    def runs(z: torch.Tensor, length: int) -> torch.Tensor:
        grouped = z.reshape(n, frames // length, length, channels, height, width)
        return grouped.mean(2, keepdim=True).expand_as(grouped).reshape(z.shape)

    static = grad.mean(1, keepdim=True).expand_as(grad)
    projections = {
        "constant in time": (static, 1 / frames),
        "runs of 4 frames": (runs(grad, 4), 1 / 4),
        "2x2 tiles": (tiles(grad, 2), 1 / 4),
        "4x4 tiles": (tiles(grad, 4), 1 / 16),
        "channel mean": (grad.mean(2, keepdim=True).expand_as(grad), 1 / channels),
        "runs of 4 x 2x2 tiles": (tiles(runs(grad, 4), 2), 1 / 16),
        "constant in time x 2x2 tiles": (tiles(static, 2), 1 / (4 * frames)),
    }
    total = grad.pow(2).flatten(1).sum(1)
    return {
        name: (float((p.pow(2).flatten(1).sum(1) / total).mean()), dims)
        for name, (p, dims) in projections.items()
    }


def temporal_spectrum(grad: torch.Tensor) -> list[float]:
    """Mean share of ``|grad|^2`` per temporal frequency, ``grad [N,T,C,H,W]``: ``T // 2 + 1`` bins, bin
    ``f`` = ``f`` cycles over the clip (0: constant in time; T/2: the sign alternates every frame)."""
    frames = grad.shape[1]
    power = torch.fft.rfft(grad, dim=1).abs().pow(2).sum((2, 3, 4))  # [N, T//2 + 1]
    # the bins strictly between 0 and T/2 stand for two frequencies (+f and -f) of the full spectrum
    twice = torch.ones(power.shape[1])
    twice[1 : (frames + 1) // 2] = 2.0
    power = power * twice
    return (power / power.sum(1, keepdim=True)).mean(0).tolist()


def observed_update(
    original: Callable[..., None], model: WhiteBox, exact: bool, cosines: dict[int, list[float]]
) -> Callable[..., None]:
    """A replacement for the attack's ``_update`` (``original``) that runs it, then (untargeted, unfinished
    clips with an estimate) records the cosine of the estimate with the true gradient at the new current
    point and, if ``exact``, puts that gradient in the estimate's place."""

    def update(state: Any, *args: Any, **kwargs: Any) -> None:
        original(state, *args, **kwargs)
        if state.gradient is None or state.done:
            return
        true = log_prob_gradient(model, state.adv[None], torch.tensor([state.label])).reshape(1, -1)
        estimate = torch.from_numpy(state.gradient[:-1]).reshape(1, -1)  # a view: the exact mode writes it
        cosines.setdefault(state.owner, []).append(float(gradient_cosine(estimate, true)[0]))
        if exact:
            estimate.copy_(true)

    return update


def where_energy(grad: torch.Tensor, grid: int = 4) -> tuple[list[float], list[float]]:
    """Where ``|grad|^2`` lies, ``grad [N,T,C,H,W]`` (H, W divisible by ``grid``), mean over the clips:
    its share per frame ``[T]``, and per cell of a ``grid x grid`` partition of the frame (row-major).
    A gradient spread evenly would give ``1/T`` and ``1/grid^2`` everywhere."""
    energy = grad.pow(2)
    total = energy.flatten(1).sum(1, keepdim=True)
    per_frame = energy.sum((2, 3, 4)) / total
    n, _, _, height, width = grad.shape
    plane = energy.sum((1, 2)).reshape(n, grid, height // grid, grid, width // grid)
    per_cell = plane.sum((2, 4)).reshape(n, -1) / total
    return per_frame.mean(0).tolist(), per_cell.mean(0).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lrcn-synth")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--modes", default="estimate,exact", help="comma-separated: estimate, exact")
    parser.add_argument("--params", default="{}", help="JSON dict of further video_square keyword arguments")
    parser.add_argument("--energy", action="store_true", help="print the gradient's subspace energies only")
    args = parser.parse_args()
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in ("estimate", "exact"):
            parser.error(f"--modes: unknown mode {mode!r} (estimate, exact)")
    torch.set_num_threads(1)
    original = square_module._update
    for name in args.models.split(","):
        net = zoo.load(name).eval()
        white_box = WhiteBox(net)
        videos, labels, order = chosen_clips(net, args.split)
        if args.energy:
            grad = log_prob_gradient(white_box, videos, labels)
            print(
                f"{name} {args.split} ({len(order)} clips): "
                + ", ".join(
                    f"{sub} {share:.2f} (dims {dims:.3f})"
                    for sub, (share, dims) in subspace_energy(grad).items()
                )
            )
            print(
                f"{name} {args.split} temporal spectrum, share per frequency (cycles per clip 0..{grad.shape[1] // 2}): "
                + " ".join(f"{share:.2f}" for share in temporal_spectrum(grad))
            )
            per_frame, per_cell = where_energy(grad)
            print(f"{name} {args.split} share per frame: " + " ".join(f"{share:.3f}" for share in per_frame))
            print(
                f"{name} {args.split} share per cell of a 4x4 grid (row-major): "
                + " ".join(f"{share:.3f}" for share in per_cell)
            )
            continue
        for mode in modes:
            means = []
            for seed in (int(s) for s in args.seeds.split(",")):
                cosines: dict[int, list[float]] = {}
                square_module._update = observed_update(original, white_box, mode == "exact", cosines)
                try:
                    result = square_module.video_square(
                        ScoreOracle(net, top_k=1, budget=10_000, batch_size=256),
                        videos,
                        labels,
                        generator=torch.Generator().manual_seed(seed),
                        **json.loads(args.params),
                    )
                finally:
                    square_module._update = original
                counts = [
                    int(q) if bool(ok) else None for q, ok in zip(result.queries, result.success, strict=True)
                ]
                fooled = [q for q in counts if q is not None]
                means.append(sum(fooled) / max(len(fooled), 1))
                per_clip = " ".join("F" if q is None else str(q) for q in counts)
                print(
                    f"{name} {args.split} {mode} seed {seed}: SR {len(fooled)}/{len(counts)}, mean {means[-1]:.0f} | "
                    f"{per_clip}",
                    flush=True,
                )
                if mode == "estimate":
                    for owner, series in sorted(cosines.items()):
                        windows = [(a, a + len(series[a:b]), series[a:b]) for a, b in WINDOWS if series[a:b]]
                        spent = "not fooled" if counts[owner] is None else f"{counts[owner]} queries"
                        print(
                            f"    clip {order[owner]} ({spent}): cosine with the true gradient, rounds "
                            + ", ".join(f"{a}-{b} {statistics.mean(w):.2f}" for a, b, w in windows)
                        )
            print(f"{name} {args.split} {mode}: mean over seeds {statistics.mean(means):.0f}", flush=True)


if __name__ == "__main__":
    main()
