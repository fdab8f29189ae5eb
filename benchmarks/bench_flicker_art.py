"""vidattack's flicker attack against IBM ART's ``OverTheAirFlickeringPyTorch`` on the same model and videos.

    python benchmarks/bench_flicker_art.py [--model c3d-synth] [--iterations 300] [--art-eps-step 0.01]
                                          [--videos 10] [--threads 1]

Both attack the same videos (the first correctly classified test-bed clip of each class), untargeted,
with the paper's regulariser weights (lambda = 1, beta1 = beta2 = 0.5) and margin 0.05, and the same
iteration budget: ART runs exactly ``--iterations`` signed-gradient steps of ``--art-eps-step`` (its own
defaults: 0.01, no early stop), vidattack at most ``--iterations`` Adam steps (lr 1e-3, Appendix B) with
its stopping rule. Thickness and roughness are measured the same way for both, on the perturbation
actually applied (``adv - clean`` after clipping, ``vidattack.metrics``), over the successful videos.
Wall times are total seconds over all videos; the ratio is the number to read (the machines are noisy).

Needs the optional extra ``art`` (``pip install adversarial-robustness-toolbox``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vidattack import WhiteBox, metrics, models
from vidattack.attacks.flicker import flicker
from vidattack.data.synthetic import SynthConfig, generate


def one_per_class(net: torch.nn.Module, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first correctly classified test clip of each class (up to ``count`` classes)."""
    clips = generate("test", SynthConfig(), indices=range(200))
    with torch.no_grad():
        preds = net(clips.videos).argmax(1)
    chosen: dict[int, int] = {}
    for index, (label, pred) in enumerate(zip(clips.labels.tolist(), preds.tolist(), strict=True)):
        if label == pred and label not in chosen:
            chosen[label] = index
    picks = [chosen[c] for c in sorted(chosen)][:count]
    return clips.videos[picks], clips.labels[picks]


class _NFHWC(torch.nn.Module):
    """ART feeds videos as [N, F, H, W, C]; vidattack models take [N, T, C, H, W]."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 1, 4, 2, 3))


def run_art(
    net: torch.nn.Module, videos: torch.Tensor, labels: torch.Tensor, iterations: int, eps_step: float
):
    from art.attacks.evasion import OverTheAirFlickeringPyTorch
    from art.estimators.classification import PyTorchClassifier

    frames, _, height, width = videos.shape[1:]
    num_classes = int(net(videos[:1]).shape[1])
    classifier = PyTorchClassifier(
        model=_NFHWC(net),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(frames, height, width, 3),
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    attack = OverTheAirFlickeringPyTorch(
        classifier,
        eps_step=eps_step,
        max_iter=iterations,
        beta_0=1.0,
        beta_1=0.5,
        beta_2=0.5,
        loss_margin=0.05,
        batch_size=1,
        verbose=False,
    )
    x = videos.permute(0, 1, 3, 4, 2).numpy()
    onehot = torch.nn.functional.one_hot(labels, num_classes).numpy().astype("float32")
    start = time.perf_counter()
    adv = attack.generate(x, y=onehot)
    seconds = time.perf_counter() - start
    return torch.from_numpy(adv).permute(0, 1, 4, 2, 3).contiguous(), seconds


def run_vidattack(
    net: torch.nn.Module,
    videos: torch.Tensor,
    labels: torch.Tensor,
    iterations: int,
    batched: bool = False,
    lr: float = 1e-3,
):
    """vidattack's flicker, one video at a time (as ART's per-sample loop) or all videos in one call.

    Batched, every video still gets its own ``delta`` and its own stopping rule (``MaskedAdam`` freezes
    finished rows); only the forward/backward passes are shared.
    """
    start = time.perf_counter()
    if batched:
        adv = flicker(WhiteBox(net), videos, labels, steps=iterations, lr=lr).adversarial
        return adv, time.perf_counter() - start
    adv = []
    for i in range(videos.shape[0]):  # one video at a time, as ART's batch_size=1
        adv.append(
            flicker(WhiteBox(net), videos[i : i + 1], labels[i : i + 1], steps=iterations, lr=lr).adversarial
        )
    return torch.cat(adv), time.perf_counter() - start


def describe(
    name: str,
    net: torch.nn.Module,
    clean: torch.Tensor,
    adv: torch.Tensor,
    labels: torch.Tensor,
    seconds: float,
) -> dict:
    with torch.no_grad():
        success = net(adv).argmax(1) != labels
    thick = metrics.thickness(clean, adv)
    rough = metrics.roughness(clean, adv)
    ok = success if bool(success.any()) else torch.ones_like(success)
    return {
        "name": name,
        "fooling": 100.0 * float(success.float().mean()),
        "thickness": float(thick[ok].mean()),
        "thickness_sd": float(thick[ok].std(unbiased=False)),
        "roughness": float(rough[ok].mean()),
        "roughness_sd": float(rough[ok].std(unbiased=False)),
        "seconds": seconds,
        "per_video": [
            {
                "label": int(labels[i]),
                "fooled": bool(success[i]),
                "thickness": float(thick[i]),
                "roughness": float(rough[i]),
            }
            for i in range(labels.shape[0])
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="c3d-synth")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--art-eps-step", type=float, default=0.01)
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--vidattack-modes",
        default="sequential,batched",
        help="comma-separated: sequential (one video per call) and/or batched (all videos in one call)",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="vidattack's Adam lr (Appendix B: 1e-3)")
    parser.add_argument("--no-art", action="store_true", help="run only vidattack")
    parser.add_argument("--json", default=None, help="also write the rows (with per-video values) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = models.load(args.model)
    net.eval()
    videos, labels = one_per_class(net, args.videos)
    rows = []
    for mode in [m.strip() for m in args.vidattack_modes.split(",") if m.strip()]:
        if mode not in ("sequential", "batched"):
            raise SystemExit(f"--vidattack-modes: unknown mode {mode!r}")
        ours_adv, ours_s = run_vidattack(
            net, videos, labels, args.iterations, batched=mode == "batched", lr=args.lr
        )
        rows.append(
            describe(f"vidattack flicker ({mode}, lr {args.lr:g})", net, videos, ours_adv, labels, ours_s)
        )
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "per_video"}), flush=True)
    art_s = None
    if not args.no_art:
        art_adv, art_s = run_art(net, videos, labels, args.iterations, args.art_eps_step)
        rows.append(
            describe(
                f"ART OverTheAirFlickeringPyTorch (eps_step {args.art_eps_step})",
                net,
                videos,
                art_adv,
                labels,
                art_s,
            )
        )
    print(
        f"model {args.model}, {videos.shape[0]} videos, iteration budget {args.iterations}, "
        f"threads {args.threads}\n"
    )
    print("| attack | fooling % | thickness % (succ.) | roughness % (succ.) | wall s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['name']} | {row['fooling']:.0f} | {row['thickness']:.2f} +- {row['thickness_sd']:.2f} | "
            f"{row['roughness']:.2f} +- {row['roughness_sd']:.2f} | {row['seconds']:.1f} |"
        )
    for row in rows[:-1] if art_s is not None else []:
        print(f"\nwall-time ratio {row['name']} / ART: {row['seconds'] / art_s:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
