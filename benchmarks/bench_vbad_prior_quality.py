"""How good is V-BAD's prior, beyond Table 5's signed cosine? (white-box, for evaluation only)

    OMP_NUM_THREADS=1 python benchmarks/bench_vbad_prior_quality.py --models c3d-scene,lrcn-scene --bed scene
    OMP_NUM_THREADS=1 python benchmarks/bench_vbad_prior_quality.py --models lrcn-synth --bed motion \
        --image-models image-small-synth,image-small2-synth,image-small3-synth

For the videos of Table 5 (the first correctly classified test video of each class among test videos
0-99) and ``--repeats`` draws of each tentative perturbation ``h`` (static, transferred: V-BAD's
defaults, first-block features, masks 0.1), prints the mean of:

* ``cos``: the signed cosine of ``h`` with the true gradient ``g`` of ``-log P(label)`` (Table 5, row a).
  V-BAD's rectification factors may be negative, so the sign of ``h`` does not matter to the attack;
* ``|cos|``: its magnitude;
* ``best rectified``: the cosine with ``g`` of the best estimate V-BAD's rectification can reach from
  ``h`` on its 8x8 partition, ``sum_i <g, d_i> d_i`` with ``d_i`` = ``h`` restricted to part ``i``
  (the rectification factors taken from the true gradient instead of NES). It measures how much of the
  gradient lies in the subspace the prior lets the attack search, which is what decides its queries.
"""

from __future__ import annotations

import argparse

import torch

from vidattack import models as zoo
from vidattack.attacks.vbad import VBADConfig
from vidattack.data.synthetic import BEDS, SynthConfig, generate
from vidattack.evaluation.diagnostics import correctly_classified_per_class, true_adversarial_gradient
from vidattack.methods.attacker_data import SyntheticAttackerData
from vidattack.methods.model_refs import load_image_models
from vidattack.metrics import gradient_cosine
from vidattack.priors.partition import partition_uniform
from vidattack.priors.tentative import make_tentative
from vidattack.threat import WhiteBox


def best_rectified(h: torch.Tensor, g: torch.Tensor, patches: int = 8) -> float:
    """Cosine with ``g`` of ``sum_i <g, d_i> d_i`` over the uniform partition's parts (one video)."""
    partition = partition_uniform(tuple(h.shape), patches)
    flat_h, flat_g = h.reshape(-1).double(), g.reshape(-1).double()
    factors = torch.zeros(partition.num_parts, dtype=torch.float64).index_add_(
        0, partition.index, flat_g * flat_h
    )
    estimate = partition.expand(factors) * flat_h
    return float(gradient_cosine(estimate.unsqueeze(0), flat_g.unsqueeze(0))[0])


def image_class_gradient(image_models: list, video: torch.Tensor, label: int) -> torch.Tensor:
    """Mean over the ensemble of each image model's normalised gradient of ``-sum_t log P(label | frame t)``.

    Only meaningful when the image models predict the video's classes (the scene backbones): it is the
    white-box transfer direction a class-aware prior could use, unlike Eq. 3's label-free features.
    """
    total = torch.zeros_like(video)
    for model in image_models:
        frames = video.detach().clone().requires_grad_(True)
        loss = -torch.log_softmax(model(frames), dim=1)[:, label].sum()
        (grad,) = torch.autograd.grad(loss, frames)
        total += grad / grad.norm().clamp_min(1e-30)
    return total / len(image_models)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="c3d-scene,lrcn-scene")
    parser.add_argument("--bed", default="scene", choices=BEDS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--class-gradient",
        action="store_true",
        help="also the image models' own class-loss gradient (scene backbones predict the class)",
    )
    parser.add_argument(
        "--paper-layer",
        action="store_true",
        help="V-BAD as written: last-block features, masks 1/2 (default: vidattack's first block, 0.1)",
    )
    parser.add_argument(
        "--image-models",
        default=None,
        help="comma-separated image models of the prior (default: the test bed's two, as V-BAD's default); "
        "e.g. image-small-synth,image-small2-synth,image-small3-synth for the paper's 3-model ensemble",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = SynthConfig(bed=args.bed)
    clips = generate("test", config, indices=range(100))
    names = (
        args.image_models.split(",")
        if args.image_models
        else list(SyntheticAttackerData("train", config).image_models)
    )
    image_models = load_image_models(names)
    defaults = (VBADConfig.paper() if args.paper_layer else VBADConfig()).as_params()
    generator = torch.Generator().manual_seed(args.seed)
    print(
        f"bed {args.bed}, image models {tuple(names)}, "
        f"feature layer {defaults['feature_layer'] or 'last'}, mask {defaults['mask_prob']}"
    )
    print("| model | tentative | cos | abs cos | best rectified (8x8) |")
    print("|---|---|---:|---:|---:|")
    for name in args.models.split(","):
        model = zoo.load(name).eval()
        videos, labels = correctly_classified_per_class(model, clips.videos, clips.labels, 1)
        grads = true_adversarial_gradient(WhiteBox(model), videos, labels)
        if args.class_gradient:
            signed, best = [], []
            for i in range(len(videos)):
                direction = image_class_gradient(image_models, videos[i], int(labels[i]))
                for h in (direction, direction.sign()):
                    signed.append(float(gradient_cosine(h.unsqueeze(0), grads[i : i + 1])[0]))
                    best.append(best_rectified(h, grads[i]))
            s = torch.tensor(signed)
            print(f"| {name} (n={len(videos)}) | image-class gradient (raw / sign) | {s[0::2].mean():.3e} / "
                  f"{s[1::2].mean():.3e} | {s[0::2].abs().mean():.3e} / {s[1::2].abs().mean():.3e} | "
                  f"{torch.tensor(best[0::2]).mean():.3f} / {torch.tensor(best[1::2]).mean():.3f} |", flush=True)  # fmt: skip
        for kind in ("static", "transferred"):
            tentative = make_tentative(
                kind, image_models=image_models, layer=defaults["feature_layer"], mask_prob=defaults["mask_prob"],
                generator=generator,
            )  # fmt: skip
            signed, best = [], []
            for i in range(len(videos)):
                for _ in range(args.repeats if kind != "static" else 1):
                    h = tentative(videos[i])
                    signed.append(float(gradient_cosine(h.unsqueeze(0), grads[i : i + 1])[0]))
                    best.append(best_rectified(h, grads[i]))
            s = torch.tensor(signed)
            print(f"| {name} (n={len(s)}) | {kind} | {s.mean():.3e} | {s.abs().mean():.3e} | "
                  f"{torch.tensor(best).mean():.3f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
