"""Video RayS throughput: attack queries per second vs the model's raw batched forward rate.

Method of ``bench_vbad_throughput.py``: one correctly classified test clip is attacked (minimising form,
so the run spends the whole budget), every oracle call is timed, and the script prints

* the raw throughput of the model, videos/s, on batches of the attack's call size ``batch``
  (``torch.inference_mode``), measured before and after the attack (the machine is shared);
* the attack's queries/s (oracle count / wall time) and its ratio to the raw rate;
* the share of wall time spent inside oracle calls, and the rate of those calls alone (queries per
  oracle second) relative to the raw rate: the ratio from time shares, robust to load changes between
  the raw measurement and the attack, is ``oracle share x (oracle rate / raw rate)``;
* the distribution of call sizes (the initial search's calls are smaller than ``batch``);
* the paired ratio: right after every oracle call the raw model runs on the same batch (timed apart
  and left out of the attack's wall time), so the ratio ``raw seconds / attack seconds`` compares the
  same work under the same load, at the attack's own call sizes.

    OMP_NUM_THREADS=1 python benchmarks/bench_vrays_throughput.py [--model c3d-synth] [--budget 3000] \
        [--map-phase 0.5 --map-linf 0.2]
"""

from __future__ import annotations

import argparse
import collections
import time

import torch

from vidattack import models as zoo
from vidattack.attacks.video_rays import video_rays
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.threat import LabelOracle


def raw_throughput(model: torch.nn.Module, video: torch.Tensor, batch: int, seconds: float = 3.0) -> float:
    """Videos per second of ``model`` on batches of ``batch`` noisy copies of ``video [1,T,C,H,W]``."""
    inputs = (video.expand(batch, *video.shape[1:]) + 1e-3 * torch.randn(batch, *video.shape[1:])).clamp(0, 1)
    with torch.inference_mode():
        model(inputs)  # warm-up
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(inputs)
            count += batch
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="c3d-synth")
    parser.add_argument("--budget", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--map-phase", type=float, default=0.0, help="video_rays map_phase (the MAP phase's share)")
    parser.add_argument("--map-linf", type=float, default=None, help="video_rays map_linf")
    parser.add_argument("--no-paired", dest="paired", action="store_false",
                        help="skip the paired raw forward of every call's batch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = zoo.load(args.model).eval()
    clips = generate("test", SynthConfig(frames=16, size=32), indices=range(20))
    with torch.no_grad():
        pred = model(clips.videos).argmax(1)
    index = int((pred == clips.labels).nonzero()[0])
    video, label = clips.videos[index : index + 1], clips.labels[index : index + 1]

    raw_before = raw_throughput(model, video, args.batch)
    paired = args.paired
    oracle = LabelOracle(model, budget=args.budget, batch_size=64)
    plain_query = oracle.query
    oracle_seconds = 0.0
    paired_seconds = 0.0  # raw forwards of the same batches, run right after each oracle call
    sizes: collections.Counter[int] = collections.Counter()

    def timed_query(videos: torch.Tensor, *, owner: int | torch.Tensor | None = None) -> torch.Tensor:
        nonlocal oracle_seconds
        start = time.perf_counter()
        answer = plain_query(videos, owner=owner)
        oracle_seconds += time.perf_counter() - start
        sizes[videos.shape[0]] += 1
        if paired:
            nonlocal paired_seconds
            start = time.perf_counter()
            with torch.inference_mode():
                model(videos)
            paired_seconds += time.perf_counter() - start
        return answer

    oracle.query = timed_query  # type: ignore[method-assign]
    start = time.perf_counter()
    video_rays(
        oracle, video, label, form="minimising", batch=args.batch, map_phase=args.map_phase, map_linf=args.map_linf,
        generator=torch.Generator().manual_seed(0),
    )
    wall = time.perf_counter() - start - paired_seconds
    raw_after = raw_throughput(model, video, args.batch)
    raw = (raw_before + raw_after) / 2
    qps = oracle.queries / wall
    oracle_rate = oracle.queries / oracle_seconds
    share = oracle_seconds / wall
    full = sum(count * size for size, count in sizes.items() if size == args.batch)
    print(f"model {args.model}, test clip {index}, budget {args.budget}, batch {args.batch}, 1 thread")
    print("| raw forward (videos/s, batch) before / after | attack queries/s | ratio | oracle share of wall | "
          "oracle rate / raw | ratio (time shares) | queries in full-batch calls |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {raw_before:.0f} / {raw_after:.0f} | {qps:.0f} | {qps / raw:.2f} | {100 * share:.1f}% | "
        f"{oracle_rate / raw:.2f} | {share * oracle_rate / raw:.2f} | {full}/{oracle.queries} |"
    )
    print("call sizes (size: calls):", dict(sorted(sizes.items())))
    if paired:
        # Paired: the raw model on exactly the attack's batches, interleaved with its calls, so load
        # changes on a shared machine hit both alike. Ratio = raw seconds for these queries / wall.
        print(
            f"paired: raw forward of the same batches {oracle.queries / paired_seconds:.0f} videos/s, "
            f"attack {qps:.0f} queries/s (wall without the paired forwards), "
            f"ratio {paired_seconds / wall:.2f}"
        )


if __name__ == "__main__":
    main()
