# ruff: noqa: E501
"""Measurements of the sparse l2,1 attack (Wei et al. 2019) on the test-bed CNN+RNN models.

Each sub-command prints a Markdown table (recorded in ``benchmarks/results_sparse.md``) and writes JSON
(and plots) under ``--out``:

    python benchmarks/bench_sparse.py lambda      # tune lambda on training clips (the paper's advice)
    python benchmarks/bench_sparse.py sparsity    # l2,1 vs l2 frame sparsity; Table 1 (fooling vs mask size)
    python benchmarks/bench_sparse.py propagation # Fig. 8 (first N frames, l2 vs l2,1) and Table 2 (s/iter)
    python benchmarks/bench_sparse.py transfer    # Table 3: 4 x 4 transfer between RNN/LSTM/GRU/pool heads
    python benchmarks/bench_sparse.py universal   # Table 4: universal perturbation, train / test fooling
    python benchmarks/bench_sparse.py frames40    # the 40-frame variant (models trained at 16 frames)
    python benchmarks/bench_sparse.py figure      # docs/sparse_propagation.png (Fig. 1/4 style)

Videos: one correctly classified test clip per class (10 per model; for ``transfer`` clips every model
classifies correctly). Run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from vidattack import WhiteBox, models
from vidattack.attacks.sparse_l21 import DEFAULT_LAMBDA, NEAR_ZERO, parse_frame_mask, sparse_l21, tune_lambda
from vidattack.attacks.sparse_universal import (
    frame_predictions,
    propagation_attack,
    sparse_universal,
)
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.experiments.propagation_plot import plot_propagation

HEADS = {
    "RNN": "cnnrnn-rnn-synth",
    "LSTM": "lrcn-synth",
    "GRU": "cnnrnn-gru-synth",
    "Pool": "cnnrnn-pool-synth",
}


CACHE = Path("/tmp/sparse_bench_cache")


def _generate(split: str, config: SynthConfig, indices: range):
    """``generate`` with a small on-disk cache (rendering is the slow part on a shared CPU)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{split}_{config.frames}_{config.size}_{indices.start}_{indices.stop}.pt"
    if path.is_file():
        videos, labels = torch.load(path, weights_only=True)
        return SimpleNamespace(videos=videos, labels=labels, indices=tuple(indices))
    clips = generate(split, config, indices=indices)
    torch.save((clips.videos, clips.labels), path)
    return SimpleNamespace(videos=clips.videos, labels=clips.labels, indices=tuple(indices))


def one_per_class(nets: list, split: str = "test", frames: int = 16, classes: int = 10, limit: int = 400):
    """First clip of each class (by index) that every net in ``nets`` classifies correctly."""
    config = SynthConfig(frames=frames)
    chosen: dict[int, int] = {}
    videos: dict[int, torch.Tensor] = {}
    for start in range(0, limit, 50):
        clips = _generate(split, config, range(start, start + 50))
        with torch.no_grad():
            ok = torch.ones(len(clips.labels), dtype=torch.bool)
            for net in nets:
                ok &= net(clips.videos).argmax(1) == clips.labels
        for i in range(len(clips.labels)):
            label = int(clips.labels[i])
            if ok[i] and label not in chosen:
                chosen[label], videos[label] = clips.indices[i], clips.videos[i]
        if len(chosen) == classes:
            break
    order = sorted(chosen)
    return torch.stack([videos[c] for c in order]), torch.tensor(order), [chosen[c] for c in order]


def correct_clips(net, split: str, count: int, frames: int = 16, start: int = 0):
    config = SynthConfig(frames=frames)
    kept_v, kept_l = [], []
    index = start
    while sum(len(v) for v in kept_v) < count and index < start + 20 * count:
        clips = _generate(split, config, range(index, index + 50))
        with torch.no_grad():
            ok = net(clips.videos).argmax(1) == clips.labels
        kept_v.append(clips.videos[ok])
        kept_l.append(clips.labels[ok])
        index += 50
    return torch.cat(kept_v)[:count], torch.cat(kept_l)[:count]


def frame_stats(videos: torch.Tensor, adversarial: torch.Tensor) -> dict:
    delta = adversarial - videos
    frame_max = delta.abs().flatten(2).amax(2)
    frame_map = delta.abs().flatten(2).mean(2) * 255
    return {
        "frame_max": frame_max,
        "frame_map": frame_map,
        "near_zero": (frame_max < NEAR_ZERO).sum(1),
        "zero": (frame_max == 0).sum(1),
        "map": float(delta.abs().mean() * 255),
    }


def fmt(values) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def cmd_lambda(args) -> None:
    net = models.load(args.model)
    videos, labels = correct_clips(net, "train", 10)
    best, rows = tune_lambda(
        WhiteBox(net), videos, labels, grid=tuple(float(v) for v in args.grid.split(",")), steps=args.steps
    )
    print(
        f"| lambda | training fooling ratio | MAP (0-255) |   [{args.model}, 10 train clips, {args.steps} steps]"
    )
    print("|---|---|---|")
    for lam, fooling, mean_map in rows:
        print(f"| {lam} | {fooling:.0%} | {mean_map:.3f} |")
    print(f"chosen lambda: {best}")


def cmd_sparsity(args) -> None:
    net = models.load(args.model)
    wb = WhiteBox(net)
    videos, labels, indices = one_per_class([net])
    print(f"{args.model}: test clips {indices}, lambda {args.lam}, {args.steps} steps")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    rows = [tuple(item.strip().split(":", 1)) for item in args.rows.split(",") if item.strip()]
    for norm, mask in rows:
        start = time.perf_counter()
        result = sparse_l21(
            wb,
            videos,
            labels,
            lam=args.lam,
            norm=norm,
            mask=parse_frame_mask(mask, videos.shape[1], generator=torch.Generator().manual_seed(0)),
            steps=args.steps,
            generator=torch.Generator().manual_seed(0),
        )
        stats = frame_stats(videos, result.adversarial)
        clean_frames = frame_predictions(wb, videos)
        adv_frames = frame_predictions(wb, result.adversarial)
        allowed = result.extras[0]["frame_mask"]
        outside = ~allowed
        wrong_clean = float((clean_frames != labels[:, None]).float().mean())
        wrong_adv = float((adv_frames != labels[:, None]).float().mean())
        wrong_adv_outside = (
            float((adv_frames[:, outside] != labels[:, None]).float().mean()) if outside.any() else math.nan
        )
        wrong_clean_outside = (
            float((clean_frames[:, outside] != labels[:, None]).float().mean()) if outside.any() else math.nan
        )
        key = f"{norm} {mask}"
        results[key] = {
            "fooling": float(result.success.float().mean()),
            "map": stats["map"],
            "map_on_mask": float(stats["frame_map"][:, allowed].mean()),
            "near_zero_frames": stats["near_zero"].tolist(),
            "zero_frames": stats["zero"].tolist(),
            "mean_frame_map": stats["frame_map"].mean(0).tolist(),
            "frame_map_quantiles": torch.quantile(
                stats["frame_map"].flatten(), torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9])
            ).tolist(),
            "frame_label_wrong_clean": wrong_clean,
            "frame_label_wrong_adv": wrong_adv,
            "outside_mask_wrong_clean": wrong_clean_outside,
            "outside_mask_wrong_adv": wrong_adv_outside,
            "l21": [float(entry["l21"]) for entry in result.extras],
            "seconds": time.perf_counter() - start,
            "mask_frames": allowed.nonzero().flatten().tolist(),
        }
        if mask in ("all", "first:4"):
            for i in range(2):
                plot_propagation(
                    wb,
                    videos[i],
                    result.adversarial[i],
                    out / f"profile_{norm}_{mask.replace(':', '')}_{i}.png",
                    title=f"{args.model} {norm} mask {mask}: class {int(labels[i])} -> {int(result.adv_label[i])}",
                )
        print(
            key,
            json.dumps(
                {
                    k: v
                    for k, v in results[key].items()
                    if k in ("fooling", "map", "near_zero_frames", "seconds")
                }
            ),
        )
    (out / f"sparsity_lam{args.lam:g}.json").write_text(json.dumps(results, indent=1))
    print(
        "\n| regulariser | mask | perturbed frames | fooling ratio F | P = MAP (0-255) | MAP on perturbed frames | near-zero frames / video (mean) | frame labels wrong outside mask: clean -> adv |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, row in results.items():
        norm, mask = key.split()
        near = sum(row["near_zero_frames"]) / len(row["near_zero_frames"])
        outside = (
            "-"
            if math.isnan(row["outside_mask_wrong_adv"])
            else f"{row['outside_mask_wrong_clean']:.0%} -> {row['outside_mask_wrong_adv']:.0%}"
        )
        print(
            f"| {norm} | {mask} | {len(row['mask_frames'])} | {row['fooling']:.0%} | {row['map']:.3f} | {row['map_on_mask']:.3f} | {near:.1f} | {outside} |"
        )
    print("\nmean per-frame MAP (frames 0..15):")
    for key, row in results.items():
        print(f"  {key:<14} {fmt(row['mean_frame_map'])}")


def cmd_propagation(args) -> None:
    net = models.load(args.model)
    wb = WhiteBox(net)
    videos, labels, indices = one_per_class([net])
    print(f"{args.model}: test clips {indices}, lambda {args.lam}, {args.steps} steps")
    results = []
    for n in (1, 2, 4, 8, 16):
        for norm in ("l2", "l21"):
            result = propagation_attack(
                wb, videos, labels, num_frames=n, norm=norm, lam=args.lam, steps=args.steps
            )
            later = torch.tensor([entry["later_frames_fooled"] for entry in result.extras])
            later_clean = torch.tensor([entry["later_frames_wrong_clean"] for entry in result.extras])
            results.append(
                {
                    "N": n,
                    "norm": norm,
                    "fooling": float(result.success.float().mean()),
                    "short_fooling": sum(entry["short_success"] for entry in result.extras) / len(result.extras),
                    "later_wrong_adv": None if torch.isnan(later).all() else float(later.mean()),
                    "later_wrong_clean": None
                    if torch.isnan(later_clean).all()
                    else float(later_clean.mean()),
                    "seconds_per_iteration_batch10": result.extras[0]["seconds_per_iteration"],
                    "map": float((result.adversarial - videos).abs().mean() * 255),
                }
            )
            print(json.dumps(results[-1]))
    # Table 2: cost of one iteration (forward + backward of the shortened clip, batch of 10) against N.
    timing = []
    for n in (1, 2, 4, 8, 16):
        clip = videos[:, :n].clone().requires_grad_(True)
        for _ in range(2):
            net(clip).sum().backward()
        start = time.perf_counter()
        for _ in range(args.repeats):
            net(clip).sum().backward()
        timing.append((n, (time.perf_counter() - start) / args.repeats))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "propagation.json").write_text(json.dumps({"rows": results, "timing": timing}, indent=1))
    print(
        "\n| perturbed first N of 16 | regulariser | fooling ratio (full video) | fooling ratio (shortened video) | later clean frames with wrong frame label: clean -> adv | MAP (0-255) |"
    )
    print("|---|---|---|---|---|---|")
    for row in results:
        later = (
            "-"
            if row["later_wrong_adv"] is None
            else f"{row['later_wrong_clean']:.0%} -> {row['later_wrong_adv']:.0%}"
        )
        print(
            f"| {row['N']} | {row['norm']} | {row['fooling']:.0%} | {row['short_fooling']:.0%} | {later} | {row['map']:.3f} |"
        )
    print(
        "\n| frames through the model N | sparsity S | seconds per iteration (10 clips, fwd+bwd) | relative to N=16 |"
    )
    print("|---|---|---|---|")
    full = timing[-1][1]
    for n, seconds in timing:
        print(f"| {n} | {1 - n / 16:.1%} | {seconds:.4f} | {seconds / full:.2f} |")


def cmd_transfer(args) -> None:
    nets = {name: models.load(model) for name, model in HEADS.items()}
    videos, labels, indices = one_per_class(list(nets.values()))
    print(
        f"clips correctly classified by all four models: {indices}; lambda {args.lam}, {args.steps} steps, method {args.method}"
    )
    matrix: dict[str, dict[str, float]] = {}
    for source, net in nets.items():
        wb = WhiteBox(net)
        if args.method == "sparse":
            result = sparse_l21(wb, videos, labels, lam=args.lam, steps=args.steps, keep=args.keep)
        else:
            result = propagation_attack(
                wb, videos, labels, num_frames=8, norm="l2", lam=args.lam, steps=args.steps
            )
        matrix[source] = {}
        for target, other in nets.items():
            with torch.no_grad():
                pred = other(result.adversarial).argmax(1)
            matrix[source][target] = float((pred != labels).float().mean())
        matrix[source]["MAP"] = float((result.adversarial - videos).abs().mean() * 255)
        print(source, json.dumps(matrix[source]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"transfer_{args.method}_{args.keep}.json").write_text(json.dumps(matrix, indent=1))
    names = list(nets)
    print("\n| source \\ evaluated on | " + " | ".join(names) + " | MAP (0-255) |")
    print("|---|" + "---|" * (len(names) + 1))
    for source in names:
        print(
            f"| {source} | "
            + " | ".join(f"{matrix[source][t]:.0%}" for t in names)
            + f" | {matrix[source]['MAP']:.3f} |"
        )


def cmd_universal(args) -> None:
    net = models.load(args.model)
    wb = WhiteBox(net)
    train_v, train_l = correct_clips(net, "train", args.train)
    test_v, test_l = correct_clips(net, "test", args.test)
    print(f"{args.model}: {len(train_l)} train / {len(test_l)} test clips (correctly classified)")
    rows = []
    for norm, mask in (("l21", "all"), ("l2", "all"), ("l21", "first:4")):
        result = sparse_universal(
            wb,
            train_v,
            train_l,
            lam=args.lam,
            norm=norm,
            mask=parse_frame_mask(mask, train_v.shape[1]),
            epochs=args.epochs,
            batch_size=16,
            lr_end=args.lr_end,
            test_videos=test_v,
            test_label=test_l,
            generator=torch.Generator().manual_seed(0),
        )
        frame_max = result.perturbation.abs().flatten(1).amax(1)
        row = {
            **result.summary(),
            "near_zero_frames": int((frame_max < NEAR_ZERO).sum()),
            "frame_map": (result.perturbation.abs().flatten(1).mean(1) * 255).tolist(),
        }
        rows.append(row)
        print(json.dumps(row))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "universal.json").write_text(json.dumps(rows, indent=1))
    print(
        "\n| regulariser | mask | train fooling | test fooling | MAP (0-255) | near-zero frames of E | epochs kept / run |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['norm']} | {row['mask']} | {row['train_fooling']:.0%} (n={row['n_train']}) | "
            f"{row['test_fooling']:.0%} (n={row['n_test']}) | {row['map_255']:.3f} | {row['near_zero_frames']}/16 | "
            f"{row['epoch']}/{args.epochs} |"
        )


def cmd_frames40(args) -> None:
    net = models.load(args.model)
    wb = WhiteBox(net)
    config = SynthConfig(frames=40)
    clips = generate("test", config, indices=range(args.eval))
    with torch.no_grad():
        accuracy = float((net(clips.videos).argmax(1) == clips.labels).float().mean())
    clips16 = generate("test", SynthConfig(), indices=range(args.eval))
    with torch.no_grad():
        accuracy16 = float((net(clips16.videos).argmax(1) == clips16.labels).float().mean())
    print(
        f"{args.model}: accuracy on the first {args.eval} test clips: 16 frames {accuracy16:.1%}, 40 frames {accuracy:.1%}"
    )
    videos, labels, indices = one_per_class([net], frames=40)
    print(f"40-frame clips (one per class found: {len(indices)}): {indices}")
    rows = []
    for mask in ("all", "first:8", "first:4", "first:1"):
        result = sparse_l21(wb, videos, labels, lam=args.lam, mask=parse_frame_mask(mask, videos.shape[1]), steps=args.steps)
        stats = frame_stats(videos, result.adversarial)
        rows.append(
            (
                mask,
                float(result.success.float().mean()),
                stats["map"],
                float(stats["near_zero"].float().mean()),
            )
        )
        print(rows[-1])
    print(
        f"\n| mask (of 40) | sparsity S | fooling ratio F | P = MAP (0-255) | near-zero frames / video |   [acc 40f {accuracy:.1%}]"
    )
    print("|---|---|---|---|---|")
    for mask, fooling, mean_map, near in rows:
        k = 40 if mask == "all" else int(mask.split(":")[1])
        print(f"| {mask} | {1 - k / 40:.1%} | {fooling:.0%} | {mean_map:.3f} | {near:.1f} |")


def cmd_figure(args) -> None:
    """Fig. 1/4-style propagation figure: per-frame MAP of l2,1 and l2 (all frames) and of l2,1 on the first
    4 frames, with the per-frame labels of the clean and the adversarial videos, for ``--figure-videos``
    clips (one per class, the first ones of ``one_per_class``). Writes ``--figure`` (PNG) and JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidattack.attacks.sparse_universal import propagation_profile

    net = models.load(args.model)
    wb = WhiteBox(net)
    videos, labels, indices = one_per_class([net])
    count = args.figure_videos
    videos, labels, indices = videos[:count], labels[:count], indices[:count]
    variants = (("l21", "all"), ("l2", "all"), ("l21", "first:4"))
    profiles, verdicts = {}, {}
    for norm, mask in variants:
        result = sparse_l21(wb, videos, labels, lam=args.lam, norm=norm, mask=parse_frame_mask(mask, videos.shape[1]), steps=args.steps)
        profiles[(norm, mask)] = propagation_profile(wb, videos, result.adversarial)
        verdicts[(norm, mask)] = result.adv_label.tolist()
    fig, axes = plt.subplots(count, len(variants), figsize=(4.2 * len(variants), 2.9 * count), squeeze=False)
    frames = torch.arange(videos.shape[1])
    record = []
    for row in range(count):
        for col, key in enumerate(variants):
            profile = profiles[key]
            ax = axes[row][col]
            ax.bar(frames, profile["frame_map"][row], color="tab:blue", alpha=0.7, label="MAP per frame")
            ax.set_xlabel("frame")
            ax.set_ylabel("MAP (0-255)")
            twin = ax.twinx()
            twin.plot(
                frames, profile["clean_frame_labels"][row], "r:o", markersize=3, label="clean frame label"
            )
            twin.plot(
                frames, profile["adv_frame_labels"][row], "k--x", markersize=4, label="adv. frame label"
            )
            twin.set_ylim(-0.5, 9.5)
            twin.set_ylabel("frame label")
            ax.set_title(
                f"clip {indices[row]}: {key[0]} mask {key[1]}, video {int(labels[row])} -> {verdicts[key][row]}",
                fontsize=9,
            )
            if row == 0 and col == 0:
                ax.legend(loc="upper center", fontsize=7)
                twin.legend(loc="center right", fontsize=7)
            record.append(
                {
                    "clip": indices[row],
                    "norm": key[0],
                    "mask": key[1],
                    "label": int(labels[row]),
                    "adv_label": verdicts[key][row],
                    "frame_map": [round(float(v), 4) for v in profile["frame_map"][row]],
                    "clean_frame_labels": profile["clean_frame_labels"][row].tolist(),
                    "adv_frame_labels": profile["adv_frame_labels"][row].tolist(),
                }
            )
    fig.suptitle(f"{args.model}, lambda {args.lam}, {args.steps} Adam steps (bench_sparse.py figure)")
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=90)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "figure.json").write_text(json.dumps(record, indent=1))
    for item in record:
        print(json.dumps(item))


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        choices=("lambda", "sparsity", "propagation", "transfer", "universal", "frames40", "figure"),
    )
    parser.add_argument("--model", default="lrcn-synth")
    parser.add_argument("--lam", type=float, default=DEFAULT_LAMBDA)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--grid", default="1.0,0.3,0.1,0.03,0.01", help="lambda values for `lambda`, comma-separated"
    )
    parser.add_argument("--keep", default="last")
    parser.add_argument("--method", default="sparse", choices=("sparse", "prop"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr-end", type=float, default=1.0, help="universal: final lr as a share of lr (1 = constant)")
    parser.add_argument("--train", type=int, default=50)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--eval", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="/tmp/sparse_bench")
    parser.add_argument("--figure", default="docs/sparse_propagation.png", help="PNG written by `figure`")
    parser.add_argument(
        "--rows",
        default="l21:all,l2:all,l21:first:4,l21:first:2,l21:first:1,l21:random:4,l21:last:4",
        help="`sparsity` rows, comma-separated NORM:MASK",
    )
    parser.add_argument("--figure-videos", type=int, default=2)
    args = parser.parse_args()
    {
        "lambda": cmd_lambda,
        "sparsity": cmd_sparsity,
        "propagation": cmd_propagation,
        "transfer": cmd_transfer,
        "universal": cmd_universal,
        "frames40": cmd_frames40,
        "figure": cmd_figure,
    }[args.command](args)


if __name__ == "__main__":
    main()
