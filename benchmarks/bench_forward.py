"""Forward throughput of every shipped zoo model on this machine: videos per second at batch 1 and 48.

    python benchmarks/bench_forward.py [--threads 2] [--repeats 5] [--batches 1,48] [--models a,b]
    python benchmarks/bench_forward.py --full-size [--device cuda] [--batches 1,8]

``--full-size`` times the untrained full-width architectures (C3D, I3D, R(2+1)D-18, R3D-18, MC3-18) on
16x112x112 clips instead of the shipped test-bed models (the size a GPU run attacks).

Prints a markdown table. Numbers are medians over ``--repeats`` timed runs after one warm-up; compare
them as ratios within one run (the machines are noisy). Black-box attacks spend almost all their time
in these forward passes, so this table is the ceiling for their queries per second.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vidattack import models

FULL_SIZE = ("c3d", "i3d", "r2plus1d_18", "r3d_18", "mc3_18")


def videos_per_second(
    model: torch.nn.Module, batch: int, frames: int, size: tuple[int, int], repeats: int, device: str = "cpu"
) -> float:
    """Median videos/s of ``model`` on random ``[batch, frames, 3, H, W]`` inputs under inference mode."""
    inputs = torch.rand(batch, frames, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    timings = []
    with torch.inference_mode():
        model(inputs)  # warm-up: allocator and kernel selection
        for _ in range(repeats):
            if device != "cpu":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(inputs)
            if device != "cpu":
                torch.cuda.synchronize()  # GPU kernels run asynchronously: time their completion
            timings.append(time.perf_counter() - start)
    return batch / statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,48")
    parser.add_argument("--models", default=None, help="comma-separated zoo names (default: all video models)")
    parser.add_argument("--full-size", action="store_true", help="full-width architectures at 16x112x112")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    if args.full_size:
        print(f"torch {torch.__version__}, {args.threads} thread(s), {args.device}, untrained, 16x3x112x112\n")
        print("| arch | params | " + " | ".join(f"videos/s @ batch {b}" for b in batches) + " |")
        print("|" + "---|" * (2 + len(batches)))
        for arch in FULL_SIZE:
            model = models.build(arch, num_classes=101, seed=0).eval().to(args.device)
            params = sum(p.numel() for p in model.parameters())
            rates = [videos_per_second(model, b, 16, (112, 112), args.repeats, args.device) for b in batches]
            print(f"| {arch} | {params:,} | " + " | ".join(f"{r:,.2f}" for r in rates) + " |", flush=True)
        return
    entries = [entry for entry in models.list_models() if entry.get("kind", "video") == "video"]
    if args.models:
        wanted = set(args.models.split(","))
        entries = [entry for entry in entries if entry["name"] in wanted]
    header = "| model | params | " + " | ".join(f"videos/s @ batch {b}" for b in batches) + " |"
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.device}\n")
    print(header)
    print("|" + "---|" * (2 + len(batches)))
    for entry in entries:
        model = models.load(entry["name"]).to(args.device)
        frames = model.num_frames or 16
        size = model.input_size or (32, 32)
        params = sum(p.numel() for p in model.parameters())
        rates = [videos_per_second(model, b, frames, size, args.repeats, args.device) for b in batches]
        print(f"| {entry['name']} | {params:,} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |")


if __name__ == "__main__":
    main()
