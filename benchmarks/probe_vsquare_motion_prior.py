"""Probe: does placing vsquare's squares where the clip moves (``motion_prior``) save queries?

Two parts, on the clips ``bench_labels_peers.py`` attacks (first correctly classified clip of each class
among the split's first 100):

* ``--gradient``: a white-box diagnostic (not an attack): the share of the gradient of log P(label)
  (L1 mass over frames and channels, per pixel) that lies in the quarter of the pixels where the clean
  clip moves most (absolute frame differences), against the best possible quarter; 0.25 would mean
  motion says nothing about where the model looks;
* otherwise: ``video_square`` untargeted (eps 0.05, 10,000 queries, all clips in one call) with each
  ``--priors`` value and each seed (other ``video_square`` arguments as JSON in ``--params``); prints
  per-clip queries and the mean over the successes.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_vsquare_motion_prior.py --models lrcn-synth \
        --split val [--priors 0,0.5] [--seeds 0,1,2,3] [--params '{"p_init": 0.1}'] [--gradient]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from vidattack import models as zoo
from vidattack.attacks.video_square import video_square
from vidattack.threat import ScoreOracle

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_labels_peers import chosen_clips  # noqa: E402  (the same clips as the label-only comparison)


def gradient_in_motion(net: torch.nn.Module, videos: torch.Tensor, labels: torch.Tensor) -> list[tuple[float, float]]:
    """Per clip: (gradient mass in the most-moving quarter of the pixels, in the best quarter)."""
    x = videos.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.log_softmax(net(x), 1).gather(1, labels[:, None]).sum(), x)
    mass = grad.abs().sum(dim=(1, 2)).flatten(1)  # [N, H*W]
    motion = (videos[:, 1:] - videos[:, :-1]).abs().sum(dim=(1, 2)).flatten(1)
    quarter = mass.shape[1] // 4
    shares = []
    for m, g in zip(motion, mass, strict=True):
        total = float(g.sum())
        shares.append((float(g[m.topk(quarter).indices].sum()) / total, float(g.topk(quarter).values.sum()) / total))
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lrcn-synth")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--priors", default="0,0.5", help="comma-separated motion_prior values")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--params", default="{}", help="JSON dict of further video_square keyword arguments")
    parser.add_argument("--gradient", action="store_true", help="print the white-box diagnostic only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.models.split(","):
        net = zoo.load(name).eval()
        videos, labels, order = chosen_clips(net, args.split)
        if args.gradient:
            for clip, (moving, best) in zip(order, gradient_in_motion(net, videos, labels), strict=True):
                print(f"{name} {args.split} clip {clip}: gradient mass in the most-moving quarter {moving:.2f} (best quarter {best:.2f})")
            continue
        for prior in (float(p) for p in args.priors.split(",")):
            means = []
            for seed in (int(s) for s in args.seeds.split(",")):
                result = video_square(ScoreOracle(net, top_k=1, budget=10_000, batch_size=256), videos, labels,
                                      motion_prior=prior, generator=torch.Generator().manual_seed(seed),
                                      **json.loads(args.params))
                counts = [int(q) if bool(ok) else None for q, ok in zip(result.queries, result.success, strict=True)]
                fooled = [q for q in counts if q is not None]
                means.append(sum(fooled) / max(len(fooled), 1))
                per_clip = " ".join("F" if q is None else str(q) for q in counts)
                print(f"{name} {args.split} motion_prior {prior} seed {seed}: SR {len(fooled)}/{len(counts)}, "
                      f"mean {means[-1]:.0f} | {per_clip}", flush=True)
            print(f"{name} {args.split} motion_prior {prior}: mean over seeds {statistics.mean(means):.0f}", flush=True)


if __name__ == "__main__":
    main()
