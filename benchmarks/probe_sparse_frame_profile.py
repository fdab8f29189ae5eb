"""Where does the per-video l2,1 perturbation go, and does the model's read-out decide it? (Sparse paper Fig. 4)

Wei et al. 2019 (Fig. 4) find the l2,1 perturbation largest on the first frames and fading to almost
zero on the last ones; on lrcn-synth vidattack's sits on the first frame and the last 2-3 frames
(benchmarks/results_sparse.md). The hypothesis to test: the model's read-out decides it (an RNN that
classifies from its last state is most sensitive to the last frames; the l2,1 norm keeps the frames whose
gradient is largest). For each model, on its first correctly classified test clip of each class, this
prints (white-box, for evaluation only) the share of the loss gradient's squared norm on the first 3,
the middle 10 and the last 3 frames at the clean clip, and the same shares of the l2,1 perturbation's
squared norm after the attack (`sparse_l21`, defaults: lambda searched from the tuned value, 300 steps),
with its fooling ratio. Recurrent read-outs (lrcn, cnnrnn-*) against 3-D convolutions (c3d, i3d).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_sparse_frame_profile.py
"""

from __future__ import annotations

import argparse

import torch

from vidattack import models
from vidattack.attacks.sparse_l21 import sparse_l21, sparse_loss
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.selection import first_correct_per_class
from vidattack.threat import WhiteBox


def shares(per_frame: torch.Tensor) -> tuple[float, float, float]:
    """Mean over clips of the share of ``per_frame [N, T]`` (non-negative) on the first 3 / middle / last 3 frames."""
    share = per_frame / per_frame.sum(1, keepdim=True).clamp_min(1e-30)
    return (
        float(share[:, :3].sum(1).mean()),
        float(share[:, 3:-3].sum(1).mean()),
        float(share[:, -3:].sum(1).mean()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default="lrcn-synth,cnnrnn-gru-synth,cnnrnn-rnn-synth,c3d-synth,i3d-synth"
    )
    parser.add_argument("--pool", type=int, default=200, help="test clips searched for one per class")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = generate("test", SynthConfig(), indices=range(args.pool))
    print(
        "| model | clips | gradient share: first 3 / middle 10 / last 3 frames | l2,1 perturbation share: "
        "first 3 / middle 10 / last 3 | fooled |"
    )
    print("|---|---:|---|---|---:|")
    for name in args.models.split(","):
        net = models.load(name).eval()
        index = first_correct_per_class(net, clips.videos, clips.labels, 1)
        videos, labels = clips.videos[index], clips.labels[index]
        white = WhiteBox(net)
        _, grad = white.gradient(videos, lambda logits, y=labels: sparse_loss(logits, y, None))
        g = shares(grad.pow(2).flatten(2).sum(2))
        result = sparse_l21(white, videos, labels, generator=torch.Generator().manual_seed(0))
        p = shares((result.adversarial - videos).pow(2).flatten(2).sum(2))
        print(
            f"| {name} | {len(labels)} | {g[0]:.0%} / {g[1]:.0%} / {g[2]:.0%} | {p[0]:.0%} / {p[1]:.0%} / {p[2]:.0%} "
            f"| {int(result.success.sum())}/{len(labels)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
