"""White-box reference for the label-only L-inf numbers: the smallest eps at which PGD fools each clip.

Issue 18 asks a label-only attack to reach, within 5,000 queries, half the median L-inf of ART's
HopSkipJump. A label-only attack sees one bit per query; white-box PGD sees the gradient. This script
runs L-inf PGD (margin loss, zero start, ``--steps`` signed steps of eps / 10, each clip frozen at its
first success) on the clips that ``bench_labels_peers.py`` attacks (the first correctly classified clip
of every class) at every eps of a grid, all clips in one batch per eps, and prints per clip the smallest
grid eps at which PGD found an adversarial video, and the median over clips.

``--blocks`` restricts the perturbation to a block subspace: ``BTxBCxBHxBW`` makes it constant over
blocks of BT frames x BC channels x BH x BW pixels (``1x1x1x1``: every value free). Video RayS's
deepest level on a 16 x 3 x 32 x 32 clip is ``2x1x4x8`` (768 blocks): a ray of its search cannot reach
below that row's values. Each value is an upper bound on the clip's true minimal adversarial L-inf in
that subspace (PGD may miss a smaller one).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/linf_whitebox_floor.py --model c3d-synth \
        [--split test] [--blocks 1x1x1x1,2x1x4x8,16x1x2x2] [--grid 0.004,0.006,...] [--steps 100]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_labels_peers import chosen_clips  # noqa: E402  (the same clips as the label-only comparison)

DEFAULT_GRID = "0.004,0.006,0.008,0.010,0.012,0.014,0.016,0.018,0.020,0.022,0.025,0.030,0.036,0.045,0.060,0.080"


def expand(z: Tensor, blocks: tuple[int, int, int, int]) -> Tensor:
    """Block values ``[N, T/BT, C/BC, H/BH, W/BW]`` -> a perturbation ``[N, T, C, H, W]``."""
    for axis, size in zip(range(1, 5), blocks, strict=True):
        z = z.repeat_interleave(size, dim=axis)
    return z


def fooled_within(net: nn.Module, videos: Tensor, labels: Tensor, eps: float, blocks: tuple[int, int, int, int],
                  steps: int) -> Tensor:
    """``[N]`` bool: L-inf PGD within ``eps`` in the block subspace found an adversarial video."""
    from vidattack.attacks.pgd import adversarial_loss

    n, t, c, h, w = videos.shape
    z = torch.zeros(n, t // blocks[0], c // blocks[1], h // blocks[2], w // blocks[3], requires_grad=True)
    done = torch.zeros(n, dtype=torch.bool)
    for _ in range(steps):
        logits = net((videos + expand(z, blocks)).clamp(0, 1))
        done |= logits.argmax(1) != labels
        if bool(done.all()):
            break
        (grad,) = torch.autograd.grad(adversarial_loss(logits, labels, None, "margin").sum(), z)
        with torch.no_grad():
            z -= eps / 10 * grad.sign() * (~done).float().reshape(-1, 1, 1, 1, 1)
            z.clamp_(-eps, eps)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="c3d-synth")
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--blocks", default="1x1x1x1,2x1x4x8", help="comma-separated BTxBCxBHxBW block shapes")
    parser.add_argument("--grid", default=DEFAULT_GRID, help="comma-separated eps values (L-inf, [0, 1] units)")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    from vidattack import models

    torch.set_num_threads(1)
    net = models.load(args.model).eval()
    videos, labels, order = chosen_clips(net, args.split)
    shape = tuple(videos.shape[1:])
    grid = sorted(float(e) for e in args.grid.split(","))
    print(f"model {args.model}, {args.split} clips {order}, L-inf PGD (margin, {args.steps} steps, zero start)")
    print("| blocks (t x c x h x w) | free values | " + " | ".join(str(c) for c in order) + " | median |")
    print("|---" * (len(order) + 3) + "|")
    for spec in args.blocks.split(","):
        blocks = tuple(int(v) for v in spec.split("x"))
        if len(blocks) != 4 or any(s % b for s, b in zip(shape, blocks, strict=True)):
            raise SystemExit(f"--blocks {spec!r}: need 4 sizes dividing the clip shape {shape}")
        started = time.perf_counter()
        floor = [math.inf] * len(order)
        for eps in grid:
            todo = [i for i in range(len(order)) if math.isinf(floor[i])]
            if not todo:
                break
            fooled = fooled_within(net, videos[todo], labels[todo], eps, blocks, args.steps)  # type: ignore[arg-type]
            for j, i in enumerate(todo):
                if bool(fooled[j]):
                    floor[i] = eps
        free = math.prod(s // b for s, b in zip(shape, blocks, strict=True))
        cells = [f"> {grid[-1]:.3f}" if math.isinf(f) else f"{f:.3f}" for f in floor]
        print(f"| {spec} | {free} | " + " | ".join(cells) + f" | {statistics.median(floor):.4f} |"
              f"  <!-- {time.perf_counter() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
