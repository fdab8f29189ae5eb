"""Black-box attack throughput: queries/s against the model's raw batched rate, per method and per campaign.

Three measurements, each printed as a markdown table:

1. **Per method** (``--methods`` on ``--models``): one attack on one correctly classified test clip
   with ``--budget`` queries. The model is wrapped to time each forward pass and record its batch
   size, and :class:`vidattack.threat.Oracle` is timed around its model calls, so the wall time splits
   into the model's forward passes, the oracle's own work (validation, softmax, top-k) and the
   attack's work (everything else: estimators, priors, Python). Printed: queries, wall seconds,
   queries/s, the mean batch of the forward passes, the model's raw rate at that batch (videos/s,
   measured alone) and their ratio, the raw rate at the attack's own mix of batch sizes and that
   ratio, and the three time shares (the model share is the figure least disturbed by a noisy machine:
   both of its parts are measured in the same run). Each method first runs once untimed (lazy imports,
   caches: one-off costs of a process).
2. **Campaign** (``--campaign``): ``--clips`` correctly classified test clips on c3d-synth attacked
   with one method, one video after another (today's campaigns) vs :func:`vidattack.batching.run_batched`
   with all clips at once; queries/s of the whole run against the model's best raw batched rate
   (a sweep of batch sizes), and how many rows of the two runs agree.
3. **Memory** (``--memory``): peak RSS of one attack per method at 16x112x112 on CPU against a
   full-size torchvision architecture with random weights, each in a fresh subprocess
   (``resource.getrusage``), next to the RSS of the same process after loading the model and running
   one forward pass at the oracle's batch size.

    OMP_NUM_THREADS=1 python benchmarks/bench_throughput.py [--models c3d-synth,lrcn-synth]
        [--methods vbad,opt] [--budget 1000] [--campaign] [--clips 32] [--campaign-budget 2000]
        [--memory] [--memory-model r3d_18] [--tiny]

``--tiny`` shrinks everything to a smoke test (a few seconds per method). Compare numbers as ratios
within one run: the machines this is run on are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from vidattack import methods, threat
from vidattack import models as zoo
from vidattack.batching import BatchingProxy, PaddedModel, run_batched
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.methods import SyntheticAttackerData


def run_method(*args, **kwargs):
    """``methods.run`` with the zoo's attacker data (the test bed's training split)."""
    return methods.run(*args, attacker_data=SyntheticAttackerData(), **kwargs)

METHODS = ("vbad", "vbad-paper", "pbad", "srbad", "heuristic", "opt", "sva", "sva-norl", "sva-random", "sval",
           "vsquare", "vrays")
# Per-method parameters that keep one run short without changing what the loop does.
QUICK_PARAMS: dict[str, dict[str, Any]] = {"sval": {"train_count": 8}}


class TimedModel(nn.Module):
    """Wraps a model; records the batch size and wall time of every forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.batches: list[int] = []
        self.seconds = 0.0

    def forward(self, videos: Tensor) -> Tensor:
        start = time.perf_counter()
        out = self.model(videos)
        if out.is_cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        self.batches.append(int(videos.shape[0]))
        return out

    def reset(self) -> None:
        self.batches, self.seconds = [], 0.0


@contextlib.contextmanager
def timed_oracle() -> Iterator[list[float]]:
    """Time every :meth:`Oracle._logits` call (the oracle's work including the model's forwards)."""
    spent = [0.0]
    original = threat.Oracle._logits

    def logits(self: threat.Oracle, videos: Tensor, owner: Any) -> Tensor:
        start = time.perf_counter()
        try:
            return original(self, videos, owner)
        finally:
            spent[0] += time.perf_counter() - start

    threat.Oracle._logits = logits  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        threat.Oracle._logits = original  # type: ignore[method-assign]


_RAW_CACHE: dict[tuple[int, int, tuple[int, ...]], float] = {}


def raw_rate(
    model: nn.Module, shape: tuple[int, ...], batch: int, seconds: float = 1.0, *, fresh: bool = False
) -> float:
    """Videos/s of ``model`` alone on random ``[batch, *shape]`` inputs (inference mode, one warm-up).

    Cached per (model, batch, shape) unless ``fresh`` (a new measurement, e.g. after a long run)."""
    key = (id(model), batch, shape)
    if fresh or key not in _RAW_CACHE:
        inputs = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(batch))
        with torch.inference_mode():
            model(inputs)
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds or count == 0:
                model(inputs)
                count += batch
        _RAW_CACHE[key] = count / (time.perf_counter() - start)
    return _RAW_CACHE[key]


def clip_jobs(
    method: str, videos: Tensor, labels: Tensor, budget: int, params: dict[str, Any] | None = None
) -> list[Any]:
    """One executor job per clip: ``method`` on clip ``i`` with seed ``i`` (any model handle given)."""
    return [
        (lambda m, i=i: run_method(method, m, videos[i : i + 1], labels[i : i + 1], budget=budget, seed=i,
                                   params=params))
        for i in range(len(videos))
    ]


def correct_clips(model: nn.Module, count: int, split: str = "test", start: int = 0) -> tuple[Tensor, Tensor]:
    """The first ``count`` clips of ``split`` (from index ``start``) that ``model`` classifies correctly."""
    config = SynthConfig(frames=model.num_frames or 16, size=(model.input_size or (32, 32))[0])
    videos, labels, index = [], [], start
    while len(videos) < count:
        clips = generate(split, config, indices=range(index, index + 4 * count))
        with torch.inference_mode():
            pred = model(clips.videos).argmax(1)
        for i in torch.nonzero(pred == clips.labels).flatten().tolist():
            if len(videos) < count:
                videos.append(clips.videos[i])
                labels.append(clips.labels[i])
        index += 4 * count
    return torch.stack(videos), torch.stack(labels)


# ---- 1. per method -------------------------------------------------------------------------------


def per_method(
    model_name: str, methods: list[str], budget: int, clip: int, raw_seconds: float, warmup: bool = True
) -> list[dict]:
    """Run each method once on clip ``clip`` (among the correctly classified) and time its parts."""
    model = zoo.load(model_name).eval()
    timed = TimedModel(model).eval()
    videos, labels = correct_clips(model, clip + 1)
    video, label = videos[clip : clip + 1], labels[clip : clip + 1]
    rows = []
    for method in methods:
        if warmup:
            # Untimed first run: lazy imports, loaded image models and rendered test-bed clips are one-off
            # costs of a process (a campaign pays them once), not of each attack.
            with contextlib.suppress(Exception):
                run_method(method, timed, video, label, budget=60, seed=1, params=QUICK_PARAMS.get(method))
        timed.reset()
        with timed_oracle() as oracle_seconds:
            start = time.perf_counter()
            try:
                result = run_method(method, timed, video, label, budget=budget, seed=0,
                                      params=QUICK_PARAMS.get(method))
            except Exception as error:  # noqa: BLE001 - a benchmark reports what broke and goes on
                rows.append({"model": model_name, "method": method, "error": f"{type(error).__name__}: {error}"})
                continue
            wall = time.perf_counter() - start
        queries = int(result.queries.sum())
        forwards = len(timed.batches)
        mean_batch = sum(timed.batches) / forwards if forwards else 0.0
        shape = tuple(video.shape[1:])
        raw = raw_rate(model, shape, max(1, round(mean_batch)), raw_seconds)
        # The raw rate at the attack's own mix of batch sizes: its rows over the time the model alone
        # needs for the same passes (one pass of 48 and one of 1 are not two passes of 24).
        mix_seconds = sum(count * b / raw_rate(model, shape, b, raw_seconds / 3)
                          for b, count in Counter(timed.batches).items())
        raw_mix = sum(timed.batches) / mix_seconds if mix_seconds else 0.0
        rows.append({
            "model": model_name, "method": method, "queries": queries, "wall": wall,
            "qps": queries / wall, "mean_batch": mean_batch, "raw": raw, "ratio": queries / wall / raw,
            "raw_mix": raw_mix, "ratio_mix": queries / wall / raw_mix if raw_mix else 0.0,
            "model_share": timed.seconds / wall,
            "oracle_share": (oracle_seconds[0] - timed.seconds) / wall,
            "attack_share": 1.0 - oracle_seconds[0] / wall,
            "success": bool(result.success.all()),
            "batches": dict(Counter(timed.batches).most_common(3)),
        })
    return rows


def per_method_executor(
    model_name: str, methods: list[str], budget: int, clips: int, max_batch: int, raw_seconds: float,
    overlap: bool | None = None, pad: bool | str = "probe",
) -> list[dict]:
    """Each method on ``clips`` correct test clips at once through :func:`run_batched` (passes of exactly
    ``max_batch`` rows; ``overlap`` as :class:`BatchingProxy` takes it): queries/s against the raw rate at
    ``max_batch`` and the model's share of the wall time (padding rows count as model time, not as
    queries)."""
    model = zoo.load(model_name).eval()
    timed = TimedModel(model).eval()
    videos, labels = correct_clips(model, clips)
    shape = tuple(videos.shape[1:])
    rows = []
    for method in methods:
        params = QUICK_PARAMS.get(method)
        jobs = clip_jobs(method, videos, labels, budget, params)
        with contextlib.suppress(Exception):  # untimed warm-up, as in per_method
            run_method(method, model, videos[:1], labels[:1], budget=60, seed=1, params=params)
        raw_before = raw_rate(model, shape, max_batch, raw_seconds, fresh=True)
        timed.reset()
        proxy = BatchingProxy(timed, max_batch=max_batch, overlap=overlap, pad=pad)
        start = time.perf_counter()
        try:
            results = run_batched(jobs, timed, proxy=proxy)
        except Exception as error:  # noqa: BLE001 - a benchmark reports what broke and goes on
            rows.append({"model": model_name, "method": method, "error": f"{type(error).__name__}: {error}"})
            continue
        wall = time.perf_counter() - start
        raw = (raw_before + raw_rate(model, shape, max_batch, raw_seconds, fresh=True)) / 2
        queries = sum(int(r.queries.sum()) for r in results)
        rows.append({
            "model": model_name, "method": method, "clips": clips, "queries": queries, "wall": wall,
            "qps": queries / wall, "raw": raw, "ratio": queries / wall / raw,
            **ratio_factors(model, shape, proxy, wall, raw, raw_seconds),
            "model_share": timed.seconds / wall,
            "padded_share": proxy.stats.padded_rows / max(1, proxy.stats.rows + proxy.stats.padded_rows),
            "rounds": proxy.stats.rounds, "successes": sum(bool(r.success.all()) for r in results),
        })
    return rows


def ratio_factors(
    model: nn.Module, shape: tuple[int, ...], proxy: BatchingProxy, wall: float, raw: float, raw_seconds: float
) -> dict[str, float]:
    """The executor's ratio (real rows/s over the raw rate at ``max_batch``) as a product of four measured
    shares, each one reason it falls short of 1:

    * ``real``: real rows over all rows computed (padding and probe rows are work without queries);
    * ``busy``: the wall time inside the forward passes (the rest: the device waits for the attacks);
    * ``solo``: the model's time alone for the same passes over their time here (below 1: the passes ran
      slower than alone, e.g. sharing the CPU with the attacks' work);
    * ``mix``: the raw rate at the run's own pass sizes over the raw rate at ``max_batch`` (short passes
      run fewer rows per second).
    """
    sizes = Counter(proxy.stats.batch_sizes)
    rows = sum(b * count for b, count in sizes.items())
    # measured now, right after the run (as the raw rate at max_batch is): the machine's load moves
    alone = sum(count * b / raw_rate(model, shape, b, raw_seconds / 2, fresh=True) for b, count in sizes.items())
    forward = proxy.stats.forward_seconds
    computed = rows + proxy.stats.probe_rows
    return {
        "real": proxy.stats.rows / computed if computed else 0.0,
        "busy": forward / wall,
        "solo": alone / forward if forward else 0.0,
        "mix": rows / alone / raw if alone else 0.0,
    }


def print_methods_executor(rows: list[dict], max_batch: int) -> None:
    print(f"| model | method | clips | queries | wall s | queries/s | raw videos/s @ {max_batch} | ratio "
          "| = real rows x busy x solo speed x batch mix | padding % | rounds | successes |")
    print("|" + "---|" * 12)
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['method']} | error: {r['error'][:120]} |" + " |" * 9)
            continue
        print(f"| {r['model']} | {r['method']} | {r['clips']} | {r['queries']} | {r['wall']:.1f} | {r['qps']:.0f} | "
              f"{r['raw']:.0f} | {r['ratio']:.2f} | {r['real']:.2f} x {r['busy']:.2f} x {r['solo']:.2f} x "
              f"{r['mix']:.2f} | {100 * r['padded_share']:.1f} | {r['rounds']} | {r['successes']}/{r['clips']} |",
              flush=True)


def print_methods(rows: list[dict]) -> None:
    print("| model | method | queries | wall s | queries/s | mean batch | raw videos/s @ mean batch | ratio "
          "| raw @ same batch mix | ratio (mix) | model % | oracle % | attack % | top batch sizes (size: passes) |")
    print("|" + "---|" * 14)
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['method']} | error: {r['error'][:120]} |" + " |" * 11)
            continue
        print(f"| {r['model']} | {r['method']} | {r['queries']} | {r['wall']:.1f} | {r['qps']:.0f} | "
              f"{r['mean_batch']:.1f} | {r['raw']:.0f} | {r['ratio']:.2f} | {r['raw_mix']:.0f} | {r['ratio_mix']:.2f} | "
              f"{100 * r['model_share']:.0f} | "
              f"{100 * r['oracle_share']:.0f} | {100 * r['attack_share']:.0f} | {r['batches']} |", flush=True)


# ---- 2. campaign -----------------------------------------------------------------------------------


def campaign(
    model_name: str, method: str, clips: int, budget: int, max_batch: int, raw_batches: list[int],
    raw_seconds: float, check_identical: bool, repeats: int = 1, pad: bool | str = "probe",
    modes: tuple[bool, ...] = (False, True),
) -> dict:
    """One method on ``clips`` correct test clips: one after another vs :func:`run_batched` (K = clips),
    the executor ``repeats`` times with its passes in line and overlapped."""
    model = zoo.load(model_name).eval()
    videos, labels = correct_clips(model, clips)
    shape = tuple(videos.shape[1:])
    rates = {b: raw_rate(model, shape, b, raw_seconds) for b in raw_batches}
    jobs = clip_jobs(method, videos, labels, budget)
    start = time.perf_counter()
    sequential = [job(model) for job in jobs]
    seq_wall = time.perf_counter() - start
    seq_q = sum(int(r.queries.sum()) for r in sequential)

    def same(a: Any, b: Any) -> bool:
        return torch.equal(a.adversarial, b.adversarial) and torch.equal(a.queries, b.queries)

    out = {
        "model": model_name, "method": method, "clips": clips, "budget": budget, "max_batch": max_batch,
        "pad": pad, "raw": rates, "best_raw": max(rates.values()), "best_batch": max(rates, key=rates.get),
        "seq_queries": seq_q, "seq_wall": seq_wall, "seq_qps": seq_q / seq_wall,
        "seq_success": sum(bool(r.success.all()) for r in sequential),
        "executor": [],
    }
    # In line and overlapped alternate (``modes``), ``repeats`` times each: on a shared machine one run's
    # rate can move by 10% or more, so the table reports every run and the median of each kind.
    for overlap in modes * repeats:
        # the raw rate at the best batch right before and after this run: the load moves within minutes
        raw_before = raw_rate(model, shape, out["best_batch"], raw_seconds, fresh=True)
        proxy = BatchingProxy(model, max_batch=max_batch, overlap=overlap, pad=pad)
        start = time.perf_counter()
        batched = run_batched(jobs, model, proxy=proxy)
        bat_wall = time.perf_counter() - start
        bat_q = sum(int(r.queries.sum()) for r in batched)
        around = (raw_before + raw_rate(model, shape, out["best_batch"], raw_seconds, fresh=True)) / 2
        out["executor"].append({
            "raw_around": around, "ratio_around": bat_q / bat_wall / around,
            "overlap": overlap, "queries": bat_q, "wall": bat_wall, "qps": bat_q / bat_wall,
            "success": sum(bool(r.success.all()) for r in batched),
            "same_as_plain_sequential": sum(same(a, b) for a, b in zip(sequential, batched, strict=True)),
            "rounds": proxy.stats.rounds, "forwards": proxy.stats.forwards,
            "padded_share": proxy.stats.padded_rows / max(1, proxy.stats.rows + proxy.stats.padded_rows),
            "forward_share": proxy.stats.forward_seconds / bat_wall,
        })
    # The machine's load moves: the best raw rate again after the runs, to bracket them.
    after = {b: raw_rate(model, shape, b, raw_seconds, fresh=True) for b in (out["best_batch"], max_batch)}
    out["raw_after"] = after
    out["best_raw_after"] = max(after.values())
    if check_identical:
        start = time.perf_counter()
        padded = [job(PaddedModel(model, max_batch)) for job in jobs]
        out["padded_seq_wall"] = time.perf_counter() - start
        out["same_as_padded_sequential"] = sum(same(a, b) for a, b in zip(padded, batched, strict=True))
    return out


def print_campaign(c: dict) -> None:
    print(f"\nCampaign: {c['clips']} correctly classified test clips, {c['model']}, {c['method']}, "
          f"budget {c['budget']}, batching executor K={c['clips']}, max_batch={c['max_batch']}, pad {c['pad']}\n")
    print("raw rate, videos/s by batch: " + ", ".join(f"{b}: {r:.0f}" for b, r in c["raw"].items())
          + f" (best {c['best_raw']:.0f} at {c['best_batch']}); after the runs: "
          + ", ".join(f"{b}: {r:.0f}" for b, r in c["raw_after"].items()) + "\n")
    best = (c["best_raw"] + c["best_raw_after"]) / 2
    print(f"ratios below use the mean of the best raw rate before and after: {best:.0f} videos/s\n")
    print("| run | queries | successes | wall s | queries/s | / best raw | / raw at the best batch around the run "
          "| model forward % | padding % | rows identical to sequential |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| one video at a time | {c['seq_queries']} | {c['seq_success']}/{c['clips']} | {c['seq_wall']:.1f} | "
          f"{c['seq_qps']:.0f} | {c['seq_qps'] / best:.2f} | | | | |")
    for e in c["executor"]:
        name = "batching executor, passes overlapped" if e["overlap"] else "batching executor, passes in line"
        print(f"| {name} | {e['queries']} | {e['success']}/{c['clips']} | {e['wall']:.1f} | {e['qps']:.0f} | "
              f"{e['qps'] / best:.2f} | {e['ratio_around']:.2f} ({e['raw_around']:.0f}/s) | {100 * e['forward_share']:.0f} | {100 * e['padded_share']:.1f} | "
              f"{e['same_as_plain_sequential']}/{c['clips']} |")
    for overlap in (False, True):
        runs = [e for e in c["executor"] if e["overlap"] == overlap]
        if len(runs) > 1:
            kind = "overlapped" if overlap else "in line"
            qps = statistics.median(e["qps"] for e in runs)
            print(f"\nexecutor, passes {kind}: median {qps:.0f} queries/s over {len(runs)} runs "
                  f"= {qps / best:.2f} of the best raw rate (runs: " + ", ".join(f"{e['qps'] / best:.2f}" for e in runs)
                  + f"); against the raw rate around each run: median "
                  f"{statistics.median(e['ratio_around'] for e in runs):.2f} (runs: "
                  + ", ".join(f"{e['ratio_around']:.2f}" for e in runs) + ")")
    if "same_as_padded_sequential" in c:
        print(f"\nrows identical to the sequential run against PaddedModel(model, {c['max_batch']}): "
              f"{c['same_as_padded_sequential']}/{c['clips']} (that run took {c['padded_seq_wall']:.1f} s)")


# ---- 3. memory ------------------------------------------------------------------------------------

_MEMORY_CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(1)
from vidattack import methods, models
arch, method, budget, batch_size, frames, size, params = sys.argv[1:8]
budget, batch_size, frames, size = int(budget), int(batch_size), int(frames), int(size)
model = models.build(arch, num_classes=101, seed=0).eval()
video = torch.rand(1, frames, 3, size, size, generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    label = model(video).argmax(1)
if method == "-":
    with torch.inference_mode():
        model(video.expand(batch_size, -1, -1, -1, -1).contiguous())
    queries, seconds = 0, 0.0
else:
    start = time.perf_counter()
    # a random full-size model: attacker data of its own shape (random clips; labels only matter to
    # the methods that draw start videos or initial directions from them)
    attacker = methods.TensorAttackerData(torch.rand(6, frames, 3, size, size), torch.arange(6) % 3)
    result = methods.run(method, model, video, label, budget=budget, seed=0, batch_size=batch_size,
                         params=json.loads(params), attacker_data=attacker)
    queries, seconds = int(result.queries.sum()), time.perf_counter() - start
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "queries": queries, "seconds": seconds}))
"""


def memory(arch: str, methods: list[str], budget: int, batch_size: int, frames: int, size: int,
           timeout: float) -> list[dict]:
    """Peak RSS (MB) of a fresh process per method; ``"-"`` is the model + one forward baseline."""
    rows = []
    for method in ["-", *methods]:
        params = json.dumps(QUICK_PARAMS.get(method, {}))
        command = [sys.executable, "-c", _MEMORY_CHILD, arch, method, str(budget), str(batch_size),
                   str(frames), str(size), params]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode != 0:
                rows.append({"method": method, "error": done.stderr.strip().splitlines()[-1][:160]})
                continue
            rows.append({"method": method, **json.loads(done.stdout.strip().splitlines()[-1])})
        except subprocess.TimeoutExpired:
            rows.append({"method": method, "error": f"over the {timeout:.0f} s time box"})
    return rows


def print_memory(arch: str, rows: list[dict], budget: int, batch_size: int, frames: int, size: int) -> None:
    print(f"\nPeak memory (RSS of a fresh process), {arch} random weights, {frames}x{size}x{size}, CPU, "
          f"budget {budget}, oracle batch_size {batch_size}\n")
    print("| method | peak RSS MB | over baseline MB | queries | seconds |")
    print("|---|---|---|---|---|")
    base = next((r["peak_mb"] for r in rows if r["method"] == "-" and "peak_mb" in r), None)
    for r in rows:
        name = "baseline: model + one forward at the batch size" if r["method"] == "-" else r["method"]
        if "error" in r:
            print(f"| {name} | error: {r['error']} | | | |")
            continue
        over = "" if base is None or r["method"] == "-" else f"{r['peak_mb'] - base:.0f}"
        print(f"| {name} | {r['peak_mb']:.0f} | {over} | {r['queries']} | {r['seconds']:.1f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="c3d-synth,lrcn-synth")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--budget", type=int, default=1000, help="queries per attack (per-method table)")
    parser.add_argument("--clip", type=int, default=0, help="which correctly classified test clip to attack")
    parser.add_argument("--no-methods", action="store_true", help="skip the per-method table")
    parser.add_argument("--executor", type=int, default=0, metavar="K",
                        help="also run each method on K clips through the batching executor (per-method table 2)")
    parser.add_argument("--executor-overlap", choices=("auto", "on", "off"), default="auto",
                        help="forward passes in a device thread (auto: on CUDA only) for --executor")
    parser.add_argument("--no-warmup", action="store_true", help="time each method's first run in the process")
    parser.add_argument("--campaign", action="store_true", help="also run the campaign measurement")
    parser.add_argument("--campaign-method", default="vbad")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--campaign-budget", type=int, default=2000)
    parser.add_argument("--campaign-repeats", type=int, default=1,
                        help="executor runs of the campaign, each in line and overlapped (medians printed)")
    parser.add_argument("--campaign-modes", choices=("both", "overlapped", "inline"), default="both",
                        help="which executor runs each repeat makes")
    parser.add_argument("--max-batch", type=int, default=32, help="the executor's forward batch")
    parser.add_argument("--pad", choices=("probe", "fixed", "none"), default="probe",
                        help="the executor's padding of short passes (BatchingProxy's pad: 'probe', True, False)")
    parser.add_argument("--check-identical", action="store_true",
                        help="also run the campaign one video at a time against PaddedModel (exact reference)")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory per method")
    parser.add_argument("--memory-model", default="r3d_18")
    parser.add_argument("--memory-budget", type=int, default=60)
    parser.add_argument("--memory-batch", type=int, default=8, help="oracle batch_size in the memory runs")
    parser.add_argument("--memory-size", type=int, default=112)
    parser.add_argument("--memory-timeout", type=float, default=600.0, help="seconds per memory subprocess")
    parser.add_argument("--tiny", action="store_true", help="a smoke-test configuration (seconds)")
    parser.add_argument("--json", default=None, help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    raw_seconds, raw_batches = 1.0, [1, 4, 8, 16, 32, 48, 64, 128, 256]
    if args.tiny:
        args.budget, args.clips, args.campaign_budget = min(args.budget, 150), min(args.clips, 4), 150
        args.memory_budget, args.memory_size, args.memory_batch = 12, 32, 4
        raw_seconds, raw_batches = 0.2, [1, 8, 32]
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU; "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    report: dict[str, Any] = {}
    pad = {"probe": "probe", "fixed": True, "none": False}[args.pad]
    methods = [m for m in args.methods.split(",") if m]
    if not args.no_methods:
        rows = []
        for name in args.models.split(","):
            rows += per_method(name, methods, args.budget, args.clip, raw_seconds, not args.no_warmup)
        print(f"Per method: one correctly classified test clip (#{args.clip}), budget {args.budget}, seed 0\n")
        print_methods(rows)
        report["methods"] = rows
        ratios = [r["ratio"] for r in rows if "ratio" in r]
        if ratios:
            print(f"\nmedian ratio {statistics.median(ratios):.2f}")
    if args.executor:
        rows = []
        for name in args.models.split(","):
            rows += per_method_executor(name, methods, args.budget, args.executor, args.max_batch, raw_seconds,
                                        {"auto": None, "on": True, "off": False}[args.executor_overlap], pad)
        print(f"\nPer method through the batching executor: {args.executor} correctly classified test clips at "
              f"once, budget {args.budget} each, passes of {args.max_batch} rows, overlap {args.executor_overlap}, pad {args.pad}\n")
        print_methods_executor(rows, args.max_batch)
        report["methods_executor"] = rows
    if args.campaign:
        c = campaign("c3d-synth", args.campaign_method, args.clips, args.campaign_budget, args.max_batch,
                     raw_batches, raw_seconds, args.check_identical, args.campaign_repeats, pad,
                     {"both": (False, True), "overlapped": (True,), "inline": (False,)}[args.campaign_modes])
        print_campaign(c)
        report["campaign"] = c
    if args.memory:
        size = args.memory_size
        mem = memory(args.memory_model, methods, args.memory_budget, args.memory_batch, 16, size,
                     args.memory_timeout)
        print_memory(args.memory_model, mem, args.memory_budget, args.memory_batch, 16, size)
        report["memory"] = mem
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
