"""Forward throughput of every shipped zoo model on this machine: videos per second at batch 1 and 48.

    python benchmarks/bench_forward.py [--threads 2] [--repeats 5] [--batches 1,48] [--models a,b]

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


def videos_per_second(model: torch.nn.Module, batch: int, frames: int, size: tuple[int, int], repeats: int) -> float:
    """Median videos/s of ``model`` on random ``[batch, frames, 3, H, W]`` inputs under inference mode."""
    inputs = torch.rand(batch, frames, 3, *size, generator=torch.Generator().manual_seed(0))
    timings = []
    with torch.inference_mode():
        model(inputs)  # warm-up: allocator and kernel selection
        for _ in range(repeats):
            start = time.perf_counter()
            model(inputs)
            timings.append(time.perf_counter() - start)
    return batch / statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,48")
    parser.add_argument("--models", default=None, help="comma-separated zoo names (default: all video models)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    entries = [entry for entry in models.list_models() if entry.get("kind", "video") == "video"]
    if args.models:
        wanted = set(args.models.split(","))
        entries = [entry for entry in entries if entry["name"] in wanted]
    header = "| model | params | " + " | ".join(f"videos/s @ batch {b}" for b in batches) + " |"
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU\n")
    print(header)
    print("|" + "---|" * (2 + len(batches)))
    for entry in entries:
        model = models.load(entry["name"])
        frames = model.num_frames or 16
        size = model.input_size or (32, 32)
        params = sum(p.numel() for p in model.parameters())
        rates = [videos_per_second(model, b, frames, size, args.repeats) for b in batches]
        print(f"| {entry['name']} | {params:,} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |")


if __name__ == "__main__":
    main()
