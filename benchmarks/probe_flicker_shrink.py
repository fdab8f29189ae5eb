"""Why does the single-video flicker not shrink after its class switch (Flickering paper, App. C.1 Fig. 8)?

The paper's single-video attack keeps lowering thickness and roughness after the prediction flips; on
c3d-synth vidattack's best (thinnest successful) iterate is the first successful one for 9 of 10 clips
(benchmarks/results_flicker.md). Two readings: (a) the stopping rule ends the run too early (patience
200 steps without a 0.1% thickness improvement), or (b) after the switch the margin loss's quadratic
branch (gap below the margin m) outweighs the regularisers, so the iterate stays where it is. This
probe runs the same attack on the same clips twice: with the default stopping rule, and with no early
stop (``patience = steps``), and reports per clip the first success, the thinnest successful iterate
and its step, and at the last iterate of the long run the gradient norms of the margin loss and of
``lam * (beta1 * D1 + beta2 * D2)`` and the share of steps after the switch on which the clip was
adversarial.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_flicker_shrink.py --model c3d-synth --clips 18,3,9,1,6
"""

from __future__ import annotations

import argparse

import torch

from vidattack import models
from vidattack.attacks.flicker import (
    apply_flicker,
    delta_roughness,
    delta_thickness,
    flicker,
    flicker_margin_loss,
    roughness_reg,
    thickness_reg,
)
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.threat import WhiteBox


def gradient_norms(
    white: WhiteBox,
    videos: torch.Tensor,
    labels: torch.Tensor,
    offsets: torch.Tensor,
    *,
    lam: float,
    beta1: float,
    beta2: float,
    margin: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per clip, the L2 norms of the gradients (w.r.t. the offsets) of the margin loss and the regulariser."""
    params = offsets.clone().requires_grad_(True)
    loss = flicker_margin_loss(white.logits(apply_flicker(videos, params)), labels, None, margin=margin)
    (g_loss,) = torch.autograd.grad(loss.sum(), params)
    params = offsets.clone().requires_grad_(True)
    reg = lam * (beta1 * thickness_reg(params) + beta2 * roughness_reg(params))
    (g_reg,) = torch.autograd.grad(reg.sum(), params)
    return g_loss.flatten(1).norm(dim=1), g_reg.flatten(1).norm(dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="c3d-synth")
    parser.add_argument("--clips", default="18,3,9,1,6", help="comma-separated test clip indices")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--beta1", type=float, default=0.5, help="weight of the thickness term D1")
    parser.add_argument("--beta2", type=float, default=0.5, help="weight of the roughness term D2")
    parser.add_argument(
        "--select",
        default="thickness",
        choices=("thickness", "regularizer"),
        help="which successful iterate is kept (flicker's select)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    white = WhiteBox(models.load(args.model).eval())
    indices = [int(i) for i in args.clips.split(",")]
    clips = generate("test", SynthConfig(), indices=indices)
    settings = {"lam": 1.0, "beta1": args.beta1, "beta2": args.beta2, "margin": 0.05}
    default = flicker(white, clips.videos, clips.labels, steps=args.steps, select=args.select, **settings)
    long = flicker(
        white,
        clips.videos,
        clips.labels,
        steps=args.steps,
        patience=args.steps,
        select=args.select,
        **settings,
    )
    kept = torch.stack([extras["offsets"] for extras in long.extras])
    g_loss, g_reg = gradient_norms(white, clips.videos, clips.labels, kept, **settings)
    print(
        f"{args.model}, untargeted, no l-inf bound, lr 1e-3, lam 1, beta1 {args.beta1}, beta2 {args.beta2}, "
        f"margin 0.05, select={args.select}, {args.steps} steps"
    )
    print(
        "| clip | first success | default rule: steps run, kept iterate at step, its thickness % | no early stop: "
        "kept iterate at step, its thickness % | adversarial share of the steps after the switch | "
        "grad norm margin loss / regulariser (kept iterate) |"
    )
    print("|---|---:|---|---|---:|---|")
    for k, index in enumerate(indices):
        extras_d, extras_l = default.extras[k], long.extras[k]
        after = [success for step, _, success in long.trace[k] if step > extras_l["first_success"]]
        share = sum(after) / max(len(after), 1)
        print(
            f"| {index} | {extras_d['first_success']} | {int(default.iterations[k])}, "
            f"{extras_d['best_iteration']}, {extras_d['delta_thickness']:.2f} | {extras_l['best_iteration']}, "
            f"{extras_l['delta_thickness']:.2f} | {share:.0%} | {float(g_loss[k]):.2e} / {float(g_reg[k]):.2e} |"
        )
    kept_default = torch.stack([extras["offsets"] for extras in default.extras])
    print(
        f"mean thickness / roughness %: default rule {float(delta_thickness(kept_default).mean()):.2f} / "
        f"{float(delta_roughness(kept_default).mean()):.2f}, no early stop {float(delta_thickness(kept).mean()):.2f}"
        f" / {float(delta_roughness(kept).mean()):.2f}"
    )


if __name__ == "__main__":
    main()
