"""Targeted V-BAD with a finer partition on chosen clips: is the 8x8 patch basis what stops it near the boundary?

Runs the registry's ``vbad`` with ``patches=16`` on test-bed clips, with the label, target and seed of a
stored campaign row (``--item VIDEO:LABEL:TARGET:SEED``, repeatable), and prints success and queries.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_vbad_patches.py --model lrcn-synth \\
        --item 391:2:3:282661377 --item 102:8:0:1534175628
"""

from __future__ import annotations

import argparse
import time

import torch

from vidattack import methods
from vidattack import models as zoo
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.methods import SyntheticAttackerData


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lrcn-synth")
    parser.add_argument("--item", action="append", required=True, help="VIDEO:LABEL:TARGET:SEED of a campaign row")
    parser.add_argument("--patches", type=int, default=16)
    parser.add_argument("--budget", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = zoo.load(args.model).eval()
    config = SynthConfig(frames=16, size=32)
    data = SyntheticAttackerData("train", config)
    for item in args.item:
        video, label, target, seed = (int(part) for part in item.split(":"))
        clip = generate("test", config, indices=[video])
        if int(clip.labels[0]) != label:
            raise SystemExit(f"--item {item}: test clip {video} has label {int(clip.labels[0])}, not {label}")
        start = time.perf_counter()
        result = methods.run(
            "vbad", model, clip.videos, clip.labels, target=torch.tensor([target]), eps=0.05, budget=args.budget,
            seed=seed, params={"patches": args.patches}, attacker_data=data,
        )  # fmt: skip
        print(f"{video} ({label} -> {target}) patches {args.patches}: success {bool(result.success[0])}, "
              f"queries {int(result.queries[0])}, {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
