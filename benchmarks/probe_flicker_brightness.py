"""Does training with brightness augmentation make the flicker thicker? (Flickering Table 1, white-box)

The single-video flicker needs 7.9% thickness on c3d-synth and 5.9% on i3d-synth, against 1.0% on the
paper's I3D (benchmarks/results_flicker.md). A flicker is a per-frame RGB offset, close to a brightness
change, and every zoo video model was trained with `translate_augment(max_shift=2, brightness=0.1)`: each
training clip scaled by one random factor in [0.9, 1.1]. This probe isolates that: it trains the zoo's
c3d-synth recipe again with `brightness=0` (same architecture, seed, epochs, learning rate, shifts; the
motion training split, best validation epoch kept) and runs the single-video flicker (the paper's
defaults: lambda searched from 1, margin 0.05, lr 1e-3, at most 3000 steps, the default stopping rule) on
the first correctly classified test clip of each class, for the shipped model and for the retrained one.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_flicker_brightness.py
"""

from __future__ import annotations

import argparse

import torch

from vidattack import models
from vidattack.attacks.flicker import delta_roughness, delta_thickness, flicker
from vidattack.data.synthetic import MOTION_CLASSES, SynthConfig, generate, load_split
from vidattack.models import build, evaluate, train
from vidattack.models.train import translate_augment
from vidattack.selection import first_correct_per_class
from vidattack.threat import WhiteBox

# The zoo's c3d-synth recipe (scripts/build_zoo.py): C3D at 1/8 width, fc 256, BatchNorm, 14 epochs.
C3D_KWARGS = {"width": 1 / 8, "fc_dim": 256, "fc_pool": [1, 1, 1], "batch_norm": True, "dropout": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = SynthConfig()
    retrained = build("c3d", class_names=MOTION_CLASSES, num_frames=config.frames,
                      input_size=(config.size, config.size), seed=0, **C3D_KWARGS)  # fmt: skip
    report = train(retrained, load_split("train"), load_split("val"), epochs=args.epochs, lr=2e-3, batch_size=16,
                   seed=0, device="cpu", progress=False, augment=translate_augment(max_shift=2, brightness=0.0))  # fmt: skip
    candidates = {"c3d-synth (shipped, brightness 0.1)": models.load("c3d-synth").eval(),
                  "c3d retrained, brightness 0": retrained.eval()}  # fmt: skip
    test = load_split("test")
    print(
        f"retrained: best val {report.best_val_accuracy:.3f} at epoch {report.best_epoch}, {report.seconds:.0f} s"
    )
    clips = generate("test", config, indices=range(200))
    print(
        "| model | test acc | clips | fooled | thickness % (mean +- std) | roughness % | first success (median step) |"
    )
    print("|---|---:|---:|---:|---|---:|---:|")
    for name, net in candidates.items():
        index = first_correct_per_class(net, clips.videos, clips.labels, 1)
        result = flicker(WhiteBox(net), clips.videos[index], clips.labels[index], steps=args.steps)
        kept = torch.stack([extras["offsets"] for extras in result.extras])
        fooled = result.success.bool()
        thick, rough = delta_thickness(kept)[fooled], delta_roughness(kept)[fooled]
        first = torch.tensor([float(extras["first_success"]) for extras in result.extras])[fooled]
        print(
            f"| {name} | {evaluate(net, test)['accuracy']:.3f} | {len(index)} | {int(fooled.sum())}/{len(index)} | "
            f"{float(thick.mean()):.2f} +- {float(thick.std()):.2f} | {float(rough.mean()):.2f} | "
            f"{float(first.median()):.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
