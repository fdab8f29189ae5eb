"""GPU benchmark: forward throughput of full-size video architectures and black-box attack throughput
with and without the batching executor. Driven by ``benchmarks/gpu.sh``; writes ``results.md`` and
``results.json`` into ``--out``.

1. **Forward throughput**: R(2+1)D-18, R3D-18, MC3-18 at 16x112x112 and S3D, MViT-v2-S, Swin3D-T at
   16x224x224 (their native sizes; random weights), videos/s and peak device memory at batch sizes
   1, 2, 4, ..., 256, each measurement time-boxed (``--box`` seconds); a batch that runs out of memory
   ends that architecture's sweep.
2. **Attacks**: each black-box method on ``--attack-arch`` (random weights; a clip's "true" label is the
   model's own prediction, so every clip starts correctly classified): queries/s attacking one video
   at a time (``--seq-videos`` videos) and with :func:`vidattack.batching.run_batched` over
   ``--videos`` videos at once, each as a ratio to the model's best raw rate from part 1.

Everything stops starting new measurements once ``--time-limit`` seconds have passed, and the tables
say what was skipped. ``--tiny`` is a CPU smoke configuration (about 30 s) used by the tests.

    python benchmarks/bench_gpu.py --device cuda --out gpu_results [--time-limit 420]
    python benchmarks/bench_gpu.py --tiny --out /tmp/gpu_tiny
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidattack import methods, models
from vidattack.batching import BatchingProxy, run_batched
from vidattack.methods import SyntheticAttackerData


def run_method(*args, **kwargs):
    """``methods.run`` with the zoo's attacker data (the test bed's training split)."""
    return methods.run(*args, attacker_data=SyntheticAttackerData(), **kwargs)

ARCHS: dict[str, tuple[int, int]] = {  # arch -> (frames, size): the torchvision reference recipes
    "r2plus1d_18": (16, 112),
    "r3d_18": (16, 112),
    "mc3_18": (16, 112),
    "s3d": (16, 224),
    "mvit_v2_s": (16, 224),
    "swin3d_t": (16, 224),
}
METHODS = (
    "vsquare", "vbad", "vbad-paper", "pbad", "srbad", "heuristic", "opt", "sva", "sva-norl", "sva-random", "sval"
)
QUICK_PARAMS: dict[str, dict[str, Any]] = {"sval": {"train_count": 8}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Deadline:
    """Wall-clock budget of the whole benchmark."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def forward_rate(model: nn.Module, batch: int, frames: int, size: int, device: torch.device, box: float) -> dict:
    """Videos/s of one batch size (median of timed passes within ``box`` seconds) and peak memory."""
    inputs = torch.rand(batch, frames, 3, size, size, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timings: list[float] = []
    with torch.inference_mode():
        start = time.perf_counter()
        model(inputs)  # warm-up (kernel selection, allocator)
        _sync(device)
        while time.perf_counter() - start < box or not timings:
            begin = time.perf_counter()
            model(inputs)
            _sync(device)
            timings.append(time.perf_counter() - begin)
            if len(timings) >= 20:
                break
    timings.sort()
    out = {"batch": batch, "videos_per_s": batch / timings[len(timings) // 2], "passes": len(timings)}
    if device.type == "cuda":
        out["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


_MODELS: dict[str, nn.Module] = {}


def build(arch: str, device: torch.device) -> nn.Module:
    """The architecture with random weights (seed 0), built once per run (a build takes seconds)."""
    if arch not in _MODELS:
        _MODELS[arch] = models.build(arch, num_classes=400, seed=0).eval().to(device)
    return _MODELS[arch]


def sweep(arch: str, frames: int, size: int, batches: list[int], device: torch.device, box: float,
          deadline: Deadline) -> list[dict]:
    model = build(arch, device)
    rows = []
    for batch in batches:
        if deadline.left() < 2 * box:
            rows.append({"batch": batch, "skipped": "time limit"})
            continue
        try:
            rows.append(forward_rate(model, batch, frames, size, device, box))
        except torch.OutOfMemoryError:
            rows.append({"batch": batch, "skipped": "out of memory"})
            break
        except RuntimeError as error:  # e.g. CPU allocation failure
            rows.append({"batch": batch, "skipped": f"{type(error).__name__}: {str(error)[:80]}"})
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def attack_rates(arch: str, frames: int, size: int, methods: list[str], device: torch.device, budget: int,
                 videos: int, seq_videos: int, max_batch: int, best_raw: float, deadline: Deadline,
                 method_box: float) -> list[dict]:
    """Queries/s of each method one video at a time and through the executor (K = ``videos``)."""
    model = build(arch, device)
    clips = torch.rand(videos, frames, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        labels = torch.cat([model(clips[i : i + 8].to(device)).argmax(1).cpu() for i in range(0, videos, 8)])
    rows = []
    for method in methods:
        if deadline.left() < method_box:
            rows.append({"method": method, "skipped": "time limit"})
            continue
        params = QUICK_PARAMS.get(method)

        def job(i: int, method: str = method, params: Any = params):
            return lambda m: run_method(method, m, clips[i : i + 1], labels[i : i + 1], budget=budget, seed=i,
                                          batch_size=max_batch, params=params)

        row: dict[str, Any] = {"method": method}
        try:
            _sync(device)
            start = time.perf_counter()
            seq = [job(i)(model) for i in range(seq_videos)]
            _sync(device)
            wall = time.perf_counter() - start
            row["seq_qps"] = sum(int(r.queries.sum()) for r in seq) / wall
            proxy = BatchingProxy(model, max_batch=max_batch)
            start = time.perf_counter()
            batched = run_batched([job(i) for i in range(videos)], model, proxy=proxy)
            _sync(device)
            wall = time.perf_counter() - start
            row["batched_qps"] = sum(int(r.queries.sum()) for r in batched) / wall
            row["seq_ratio"] = row["seq_qps"] / best_raw
            row["batched_ratio"] = row["batched_qps"] / best_raw
            row["mean_batch"] = proxy.stats.mean_batch
            row["padded_share"] = proxy.stats.padded_rows / max(1, proxy.stats.rows + proxy.stats.padded_rows)
        except Exception as error:  # noqa: BLE001 - a benchmark reports what broke and goes on
            row["skipped"] = f"{type(error).__name__}: {str(error)[:120]}"
        rows.append(row)
    return rows


def to_markdown(report: dict) -> str:
    lines = [f"# GPU benchmark ({report['device_name']})", "", f"torch {report['torch']}, {report['date']}, "
             f"{report['elapsed']:.0f} s in all", "", "## Forward throughput (random weights, fp32, inference mode)",
             ""]
    batches = report["batches"]
    lines.append("| arch | clip | " + " | ".join(f"b={b}" for b in batches) + " | best videos/s |")
    lines.append("|" + "---|" * (3 + len(batches)))
    for arch, entry in report["forward"].items():
        cells, best = [], 0.0
        by_batch = {r["batch"]: r for r in entry["rows"]}
        for b in batches:
            r = by_batch.get(b)
            if r is None:
                cells.append("")
            elif "skipped" in r:
                cells.append(r["skipped"])
            else:
                best = max(best, r["videos_per_s"])
                mem = f" ({r['peak_mib']:.0f} MiB)" if "peak_mib" in r else ""
                cells.append(f"{r['videos_per_s']:,.1f}{mem}")
        lines.append(f"| {arch} | {entry['clip']} | " + " | ".join(cells) + f" | {best:,.1f} |")
    attack = report.get("attacks")
    if attack:
        lines += ["", f"## Black-box attacks on {attack['arch']} ({attack['clip']}), budget {attack['budget']} per "
                  f"video, best raw rate {attack['best_raw']:,.1f} videos/s", "",
                  f"One video at a time ({attack['seq_videos']} videos) vs the batching executor "
                  f"(K={attack['videos']}, max_batch={attack['max_batch']}, padded).", "",
                  "| method | queries/s one at a time | ratio | queries/s batched | ratio | mean pass | padding |",
                  "|---|---|---|---|---|---|---|"]
        for r in attack["rows"]:
            if "skipped" in r:
                lines.append(f"| {r['method']} | {r['skipped']} | | | | | |")
                continue
            lines.append(f"| {r['method']} | {r['seq_qps']:,.1f} | {r['seq_ratio']:.2f} | {r['batched_qps']:,.1f} | "
                         f"{r['batched_ratio']:.2f} | {r['mean_batch']:.0f} | {100 * r['padded_share']:.0f}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for results.md and results.json")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--batches", default="1,2,4,8,16,32,64,128,256")
    parser.add_argument("--box", type=float, default=2.0, help="seconds per forward measurement")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--attack-arch", default="r3d_18")
    parser.add_argument("--budget", type=int, default=300, help="queries per attacked video")
    parser.add_argument("--videos", type=int, default=32, help="videos attacked at once by the executor")
    parser.add_argument("--seq-videos", type=int, default=2, help="videos attacked one at a time")
    parser.add_argument("--max-batch", type=int, default=128, help="the executor's forward batch")
    parser.add_argument("--method-box", type=float, default=25.0, help="expected seconds per method (for the limit)")
    parser.add_argument("--time-limit", type=float, default=420.0, help="stop starting measurements after this")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke configuration (~30 s)")
    args = parser.parse_args(argv)
    sizes = dict(ARCHS)
    if args.tiny:
        args.device = "cpu"
        args.archs, args.batches, args.box = "r3d_18", "1,2", 0.2
        args.methods, args.budget, args.videos, args.seq_videos = "vbad,opt", 40, 2, 1
        args.max_batch, args.method_box, args.time_limit = 8, 5.0, 50.0
        sizes = {arch: (4, 16) for arch in ARCHS}
    device = torch.device(args.device)
    if device.type == "cuda":
        # Fixed shapes: let cuDNN pick its fastest kernels (the executor's passes all have one shape).
        torch.backends.cudnn.benchmark = True
    deadline = Deadline(args.time_limit)
    started = time.perf_counter()
    batches = [int(b) for b in args.batches.split(",")]
    report: dict[str, Any] = {
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"), "batches": batches, "forward": {},
    }
    for arch in args.archs.split(","):
        frames, size = sizes[arch]
        report["forward"][arch] = {"clip": f"{frames}x{size}x{size}",
                                   "rows": sweep(arch, frames, size, batches, device, args.box, deadline)}
        print(arch, report["forward"][arch]["rows"], flush=True)
        if arch != args.attack_arch:
            _MODELS.pop(arch).cpu()  # free the device for the next architecture
    methods = [m for m in args.methods.split(",") if m]
    if methods:
        frames, size = sizes[args.attack_arch]
        rates = [r["videos_per_s"] for r in report["forward"].get(args.attack_arch, {}).get("rows", [])
                 if "videos_per_s" in r]
        if not rates:  # the sweep did not include (or could not run) the attacked architecture
            model = build(args.attack_arch, device)
            rates = [forward_rate(model, args.max_batch, frames, size, device, args.box)["videos_per_s"]]
        best_raw = max(rates)
        report["attacks"] = {
            "arch": args.attack_arch, "clip": f"{frames}x{size}x{size}", "budget": args.budget,
            "videos": args.videos, "seq_videos": args.seq_videos, "max_batch": args.max_batch, "best_raw": best_raw,
            "rows": attack_rates(args.attack_arch, frames, size, methods, device, args.budget, args.videos,
                                 args.seq_videos, args.max_batch, best_raw, deadline, args.method_box),
        }
    report["elapsed"] = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=1))
    (out / "results.md").write_text(to_markdown(report))
    print(to_markdown(report))
    return report


if __name__ == "__main__":
    main()
