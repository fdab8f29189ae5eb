"""Flickering paper Sec. 6.1 (Pony et al. 2021), the scene-based over-the-air attack, through the
*simulated* light channel (:mod:`vidattack.physical`); the paper's bulb and camera are not available here.

Protocol, as in Sec. 6.1 with the test bed in place of a filmed room: for each scene (class) k, the
"clean recording" is the first training clip of class k the model gets right; a time-invariant flicker
(Sec. 4.5, random roll during training) is trained on that one clip; it is then evaluated on "similar
scenes", the model's correctly classified test clips of the same class (other positions, sizes and
colours of the moving object), digitally at every shift and after 4 random draws of the
simulated channel per clip (rise/fall time, cross-talk, gain, reflectance, sensor noise, a random start
time: ``vidattack.physical.ChannelRanges`` defaults). Prints one row per scene and the mean.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/flicker_ota_scene.py --model i3d-synth --out runs/ota-scene

Not simulated: Fig. 7's streaming buffer (the classifier's 90-frame window filling while the attack
starts and stops); the channel is applied to whole clips.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from vidattack import io, models
from vidattack.attacks.flicker_universal import evaluate_flicker
from vidattack.data.synthetic import DATA_NAMES
from vidattack.experiments.clips import correct_clips
from vidattack.experiments.flicker_universal import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="i3d-synth", help="zoo name or checkpoint (default: the paper's I3D)"
    )
    parser.add_argument("--data", default="synth", choices=sorted(DATA_NAMES), help="test bed")
    parser.add_argument("--scenes", type=int, default=10, help="classes 0..N-1, one recorded clip each")
    parser.add_argument(
        "--similar", type=int, default=20, help="similar-scene test clips per class (at most)"
    )
    parser.add_argument(
        "--pool", type=int, default=600, help="correctly classified clips of each split searched"
    )
    parser.add_argument("--linf", type=float, default=0.2, help="L-inf bound of the flicker (share of range)")
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps on the one recorded clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output directory (one folder per scene)")
    args = parser.parse_args()

    net = models.load(args.model)
    train_v, train_l, _ = correct_clips(args.data, "train", args.pool, net)
    test_v, test_l, _ = correct_clips(args.data, "test", args.pool, net)
    args.out.mkdir(parents=True, exist_ok=True)

    print(
        f"{args.model}, l_inf {args.linf:.0%}, {args.steps} Adam steps on one clip per scene, simulated channel"
    )
    print(
        "| scene (class) | recorded clip: FR all shifts % | similar clips | digital FR all shifts % "
        "| over-the-air FR % | channel alone % | thickness % | roughness % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for k in range(args.scenes):
        recorded = (train_l == k).nonzero().flatten()[:1]
        similar = (test_l == k).nonzero().flatten()[: args.similar]
        if len(recorded) == 0 or len(similar) == 0:
            print(
                f"| {k} | no correctly classified clip of this class among the {args.pool} searched | | | | | | |"
            )
            continue
        archive = args.out / f"scene{k}.npz"
        np.savez(
            archive,
            train_videos=train_v[recorded].numpy(),
            train_labels=train_l[recorded].numpy(),
            test_videos=test_v[similar].numpy(),
            test_labels=test_l[similar].numpy(),
        )
        summary = run_experiment(
            model=args.model,
            mode="time-invariant",
            out=args.out / f"scene{k}",
            linf=args.linf,
            epochs=args.steps,
            batch_size=1,
            train_size=1,
            test_size=len(similar),
            data=str(archive),
            baselines=False,
            over_the_air=True,
            seed=args.seed + k,
        )
        delta = io.load_npz(args.out / f"scene{k}" / "delta.npz")["offsets"]
        on_recorded = evaluate_flicker(net, delta, train_v[recorded], train_l[recorded], all_shifts=True)[
            "fooling_ratio"
        ]
        ota = summary["over_the_air"]
        row = (
            on_recorded,
            summary["fooling_ratio_all_shifts"],
            ota["fooling_ratio"],
            ota["clean_error"],
            summary["thickness"],
            summary["roughness"],
        )
        rows.append(row)
        print(
            f"| {k} | {row[0]:.1f} | {len(similar)} | {row[1]:.1f} | {row[2]:.1f} | {row[3]:.1f} "
            f"| {row[4]:.2f} | {row[5]:.2f} |"
        )
    if rows:
        means = [statistics.fmean(column) for column in zip(*rows, strict=True)]
        print(
            f"| mean of {len(rows)} | {means[0]:.1f} | | {means[1]:.1f} | {means[2]:.1f} | {means[3]:.1f} "
            f"| {means[4]:.2f} | {means[5]:.2f} |"
        )


if __name__ == "__main__":
    main()
