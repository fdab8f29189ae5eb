"""Does the clip's dimension decide P-BAD vs SR-BAD in V-BAD's Table 5? (white-box, for evaluation only)

V-BAD's Table 5 (Jiang et al. 2019) finds the partition-rectified SR-BAD estimate closer to the true
gradient than pixel-wise P-BAD (3.480e-03 vs 3.029e-03) on 224 x 224 clips; on the 32 x 32 test bed the
order is reversed. The hypothesis: NES with a fixed population recovers a gradient in ``d`` dimensions
with a cosine that falls like ``sqrt(population / d)`` for pixel-wise P-BAD, while SR-BAD estimates one
factor per part of a partition whose size does not depend on the resolution. This probe isolates the
dimension: the same model and clips, shown at ``--sizes`` (each clip upsampled bilinearly; the model
sees it area-downsampled back to its own input size), so only ``d`` changes, and prints the mean signed
cosine of each rectified estimate with the true gradient (Table 5's measure, same estimator code). It
also isolates the population: P-BAD's is 96 (the paper's, "since there are many more parameters to
estimate"), SR-BAD's 48; the column "P-BAD, 48" gives P-BAD SR-BAD's population.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_vbad_dimension.py --models c3d-synth,lrcn-synth
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from vidattack import models as zoo
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.evaluation.diagnostics import VARIANTS, correctly_classified_per_class, vbad_gradient_quality

# P-BAD with SR-BAD's population, for this probe only (Table 5's variants keep the paper's settings).
VARIANTS.setdefault("pbad-48", {**VARIANTS["pbad"], "population": 48})


class ResizedInput(torch.nn.Module):
    """``model`` behind an area resize of each frame to ``size`` x ``size`` (input ``[N,T,C,H,W]``)."""

    def __init__(self, model: torch.nn.Module, size: int) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        n, t = videos.shape[:2]
        frames = F.interpolate(videos.flatten(0, 1), size=(self.size, self.size), mode="area")
        return self.model(frames.reshape(n, t, *frames.shape[1:]))


def upsample(videos: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling of every frame of ``[N,T,C,H,W]`` to ``size`` x ``size``, kept in [0, 1]."""
    n, t = videos.shape[:2]
    frames = F.interpolate(videos.flatten(0, 1), size=(size, size), mode="bilinear", align_corners=False)
    return frames.clamp(0, 1).reshape(n, t, *frames.shape[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default="c3d-synth,lrcn-synth", help="comma-separated zoo names (32 x 32 input)"
    )
    parser.add_argument(
        "--sizes", default="32,128,224", help="comma-separated frame sizes shown to the estimators"
    )
    parser.add_argument("--repeats", type=int, default=5, help="estimates per clip and size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    clips = generate("test", SynthConfig(), indices=range(100))
    print(
        "| model | frame size | dimension d | SR-BAD (48) | P-BAD (96) | P-BAD (48) | P-BAD 96 / SR-BAD | P-BAD 48 / SR-BAD |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        model = zoo.load(name).eval()
        base = int(clips.videos.shape[-1])
        videos, labels = correctly_classified_per_class(model, clips.videos, clips.labels)
        for size in sizes:
            generator = torch.Generator().manual_seed(args.seed)
            shown = upsample(videos, size) if size != base else videos
            wrapped = ResizedInput(model, base).eval() if size != base else model
            quality = vbad_gradient_quality(
                wrapped, shown, labels, tentatives=(), variants=("srbad", "pbad", "pbad-48"), repeats=args.repeats,
                generator=generator,
            )  # fmt: skip
            sr, px, px48 = (quality["rectified"][k] for k in ("srbad", "pbad", "pbad-48"))
            print(
                f"| {name} (n={quality['samples']}) | {size} | {shown[0].numel():,} | {sr:.3e} | {px:.3e} "
                f"| {px48:.3e} | {px / sr:.2f} | {px48 / sr:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
