"""V-BAD throughput: attack queries per second vs the model's raw batched forward throughput.

For each variant the attack runs a fixed number of steps on one correctly classified test video
(untargeted, no early success for the ratio to be meaningful: ``max_iterations`` caps the run), and
the script prints

* the raw throughput of the same model, videos/s, for batches of the NES population size
  (``torch.inference_mode``, the same batch the oracle sends);
* the attack's queries/s (oracle count / wall time) and the ratio of the two;
* the same ratio from time shares, robust to a machine shared with other jobs (whose load changes
  between the raw measurement and the attack): ``(queries / population queries) * (oracle population
  seconds / wall)``, i.e. the ratio the attack would have if its population calls ran at the raw
  batched rate (the oracle adds only input validation, softmax and top-k to the forward);
* where the wall time goes: the oracle's population calls, the tentative perturbation (image-model
  backward passes), partition building, candidate construction (one gather), the estimator's own
  arithmetic, the loop's one-query reads of each new point (estimated as ``(iterations + 1)`` forwards
  at the raw batch-1 rate; with ``fold_reads`` the points are read inside the population calls and
  only the last one alone), and the rest (step, projection, momentum, Python).

The image models of the transferred tentative are loaded once before timing (loading weights is a
one-off cost per attack run, not per query).

    OMP_NUM_THREADS=1 python benchmarks/bench_vbad_throughput.py [--model c3d-synth] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from vidattack import ScoreOracle
from vidattack import models as zoo
from vidattack.attacks.vbad import vbad
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.methods import SyntheticAttackerData
from vidattack.methods.model_refs import load_image_models

VARIANTS = {
    "vbad (transferred ensemble, shifted 8x8 grid, NES 48)": {},
    "vbad, reads folded into the population call": {"fold_reads": True},
    "vbad static (uniform 8x8, NES 48)": {"tentative": "static"},
    "srbad (static, random partition, NES 48)": {"tentative": "static", "partition": "random"},
    "pbad (static, pixel, NES 96)": {"tentative": "static", "partition": "pixel", "population": 96},
}


def raw_throughput(model: torch.nn.Module, video: torch.Tensor, batch: int, seconds: float = 3.0) -> float:
    """Videos per second of ``model`` on batches of ``batch`` copies of ``video`` (with small noise)."""
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
    parser.add_argument("--steps", type=int, default=20, help="gradient estimates per attack run")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model).eval()
    frames = getattr(model, "num_frames", None) or 16
    size = (getattr(model, "input_size", None) or (32, 32))[0]
    clips = generate("test", SynthConfig(frames=frames, size=size), indices=range(20))
    with torch.no_grad():
        probs = torch.softmax(model(clips.videos), 1)
    correct = (probs.argmax(1) == clips.labels).nonzero().flatten()
    # the most confident correct video: the attack will not succeed within the capped steps
    index = int(correct[probs[correct, clips.labels[correct]].argmax()])
    video, label = clips.videos[index : index + 1], clips.labels[index : index + 1]
    print(
        f"model {args.model}, test video {index} (class {int(label)}), {args.steps} steps, "
        f"{args.threads} thread(s)"
    )
    print(
        "| variant | raw forward (videos/s, batch P) | attack (queries/s) | ratio | ratio (time shares) | "
        "oracle population | "
        "tentative | partition | candidates | estimator | 1-query reads (est.) | rest |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    image_models = tuple(load_image_models(SyntheticAttackerData.image_models))
    single = raw_throughput(model, video, 1)
    for name, params in VARIANTS.items():
        population = params.get("population", 48)
        folded = int(bool(params.get("fold_reads", False)))
        if params.get("tentative", "transferred") == "transferred":
            params = {**params, "image_models": image_models}
        # the batch the oracle sends: the population, plus the new point when reads are folded in
        batch = population + folded
        raw = raw_throughput(model, video, batch)
        oracle = ScoreOracle(model, top_k=1, batch_size=batch)
        start = time.perf_counter()
        result = vbad(
            oracle,
            video,
            label,
            max_iterations=args.steps,
            generator=torch.Generator().manual_seed(0),
            **params,
        )
        wall = time.perf_counter() - start
        qps = oracle.queries / wall
        extras = result.extras[0]
        phases = {
            key: extras[f"seconds_{key}"]
            for key in ("oracle", "tentative", "partition", "candidates", "estimator")
        }
        # batch-of-one reads: one per point, or (folded) only the last point, which no population read
        reads = (1 if folded else int(result.iterations[0]) + 1) / single
        rest = wall - sum(phases.values()) - reads
        share = " | ".join(f"{100 * value / wall:.1f}%" for value in (*phases.values(), reads, rest))
        call_queries = int(result.iterations[0]) * batch
        shares = oracle.queries / call_queries * phases["oracle"] / wall
        print(f"| {name} | {raw:.0f} | {qps:.0f} | {qps / raw:.2f} | {shares:.2f} | {share} |", flush=True)
    print(f"\nraw forward at batch 1 (the loop's reads): {single:.0f} videos/s")


if __name__ == "__main__":
    main()
