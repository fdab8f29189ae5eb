"""Score-based attacks side by side: vidattack's video Square Attack, V-BAD, P-BAD and IBM ART's peers.

    OMP_NUM_THREADS=1 python benchmarks/bench_scores_peers.py [--models c3d-synth,lrcn-synth]
        [--budget 10000] [--clips 10] [--eps 0.05] [--methods vsquare,vbad,pbad,art-simba-px,...]
        [--targeted --vbad-budget 100000] [--split val --vsquare-params '{"candidates": 1}'] [--seeds 0,1,2]

All methods attack the same clips (the first correctly classified test-split clip of each class, up to
``--clips``, from the test bed the model was trained on: the scene bed's for ``*-scene`` models, whose
V-BAD and P-BAD also get that bed's attacker data), with the same L-inf bound and the same per-clip query
budget, untargeted (``--targeted``: a seeded random target per clip, ART methods skipped; V-BAD and P-BAD
may get their own budget with ``--vbad-budget``, as in the acceptance, which compares vsquare at 60,000
to V-BAD at 100,000).

* ``vsquare``: :func:`vidattack.attacks.video_square.video_square`, all clips in one call (its rounds
  batch every clip's candidates into one oracle call), top-1 ``ScoreOracle``.
* ``vbad``, ``pbad``: the methods' entries (top-1 ``ScoreOracle``, clips one after another).
* ``art-simba-px``, ``art-simba-dct``, ``art-square``: IBM ART 1.20 ``SimBA`` (pixel: ``epsilon`` = the
  bound, each pixel moved at most once; DCT: ART's default ``epsilon`` 0.1) and ``SquareAttack`` (L-inf,
  ``eps`` = the bound, ART's defaults otherwise), on the video shown to ART as an image with its frames
  stacked as channels (``[T,C,H,W] -> [T*C,H,W]``), through a ``PyTorchClassifier`` that returns the
  softmax. ART sees the full probability vector (more than the top-1 the others get). Its queries are
  counted by wrapping the model: every clip ART forwards is charged to the attacked clip it is closest
  to, and a clip counts as fooled at the first forwarded clip that is misclassified, within the bound
  (L-inf <= eps + 1e-5) and in [0, 1]; success needs that within the budget. ART runs ``max_iter`` =
  budget iterations (it may forward more than the budget; those forwards do not count as success).

Printed per model and method: success rate, mean and median queries of the successes, MAP (0-255,
``vidattack.metrics.map_255``, over the successes), wall seconds and queries per second (all queries
spent, over wall). Each method runs once per seed of ``--seeds`` (vidattack's generator; ART's draws
from NumPy's global generator, seeded for the attack only); with several seeds the method column names
the seed, and a summary follows per model: each method's success rate and mean queries averaged over
the seeds, and, for the first method against each other one, both methods' mean queries on the clips
that both fool (per seed, then pooled), since a mean over each method's own successes favours the
method that gives up on the hard clips. Last, per model, points of each method's success-vs-queries
curve (the success rate within 100, 250, ... and ``--budget`` queries, pooled over the seeds), and
whether the first method's curve is at or above each other one's at every query count.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vidattack import methods, metrics
from vidattack import models as zoo
from vidattack.data.synthetic import SynthClips, SynthConfig, load_split
from vidattack.evaluation.diagnostics import correctly_classified_per_class
from vidattack.methods import SyntheticAttackerData

ALL_METHODS = ("vsquare", "vbad", "pbad", "art-simba-px", "art-simba-dct", "art-square")


@dataclass
class Outcome:
    """One method's run on the clips."""

    success: Tensor  # bool[N]
    queries: Tensor  # long[N], queries to success (or spent, on failure)
    adversarial: Tensor  # [N,T,C,H,W], the fooling clip for successes
    wall: float
    total_queries: int


class _CountingImage(nn.Module):
    """The video model shown to ART as an image model, counting ART's queries per attacked clip."""

    def __init__(self, net: nn.Module, clean: Tensor, labels: Tensor, eps: float, budget: int) -> None:
        super().__init__()
        self.net, self.clean, self.labels, self.eps, self.budget = net, clean, labels, eps, budget
        self.shape = tuple(clean.shape[1:])
        n = clean.shape[0]
        self.queries = torch.zeros(n, dtype=torch.long)
        self.first = torch.full((n,), -1, dtype=torch.long)
        self.found = clean.clone()

    def forward(self, x: Tensor) -> Tensor:
        videos = x.reshape(x.shape[0], *self.shape)
        logits = self.net(videos)
        with torch.no_grad():
            flat_clean = self.clean.flatten(1)
            for row, video in enumerate(videos.detach()):
                distance = (video.flatten()[None] - flat_clean).abs().amax(dim=1)
                owner = int(distance.argmin())
                self.queries[owner] += 1
                fooled = int(logits[row].argmax()) != int(self.labels[owner])
                within = float(distance[owner]) <= self.eps + 1e-5 and 0 <= float(video.min()) <= float(video.max()) <= 1
                if fooled and within and self.first[owner] < 0 and self.queries[owner] <= self.budget:
                    self.first[owner] = self.queries[owner]
                    self.found[owner] = video
        return torch.softmax(logits, dim=1)


def run_art(
    method: str, net: nn.Module, videos: Tensor, labels: Tensor, eps: float, budget: int, seed: int = 0
) -> Outcome:
    from art.attacks.evasion import SimBA, SquareAttack
    from art.estimators.classification import PyTorchClassifier

    n, t, c, h, w = videos.shape
    counter = _CountingImage(net, videos, labels, eps, budget)
    with torch.no_grad():
        classes = int(net(videos[:1]).shape[1])
    classifier = PyTorchClassifier(
        model=counter, loss=nn.CrossEntropyLoss(), input_shape=(t * c, h, w), nb_classes=classes,
        clip_values=(0.0, 1.0), channels_first=True,
    )
    images = videos.reshape(n, t * c, h, w).numpy().astype(np.float32)
    if method == "art-square":
        attack = SquareAttack(classifier, norm=np.inf, eps=eps, max_iter=budget, batch_size=n, verbose=False)
    else:
        kind = "px" if method == "art-simba-px" else "dct"
        attack = SimBA(classifier, attack=kind, max_iter=budget, epsilon=eps if kind == "px" else 0.1, verbose=False)
    counter.queries.zero_()  # the classifier's construction forwards nothing, but be sure
    # ART draws from NumPy's global generator (SimBA's coordinate order, Square Attack's squares) and
    # takes no generator: seed it for this attack only, so that a peer row is reproducible (unseeded,
    # two SimBA DCT runs differed by a few %), and give the caller its state back afterwards
    saved = np.random.get_state()
    np.random.seed(seed)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            if method == "art-square":
                attack.generate(images, y=labels.numpy())
            else:
                for i in range(n):  # ART's SimBA attacks one image per call
                    attack.generate(images[i : i + 1], y=np.eye(classes)[labels[i : i + 1].numpy()])
    finally:
        np.random.set_state(saved)
    wall = time.perf_counter() - start
    success = counter.first >= 0
    queries = torch.where(success, counter.first, counter.queries.clamp(max=budget))
    return Outcome(success, queries, counter.found, wall, int(counter.queries.sum()))


def run_vidattack(
    method: str, net: nn.Module, videos: Tensor, labels: Tensor, target: Tensor | None, eps: float,
    budget: int, batch_size: int, vsquare_params: dict | None, seed: int, attacker_data: SyntheticAttackerData,
) -> Outcome:
    start = time.perf_counter()
    # every vidattack method through the methods layer; attacker data: the model's bed (bed_clips)
    result = methods.run(
        method, net, videos, labels, target=target, eps=eps, budget=budget, seed=seed, batch_size=batch_size,
        params=vsquare_params if method == "vsquare" else None, attacker_data=attacker_data,
    )
    wall = time.perf_counter() - start
    return Outcome(result.success, result.queries, result.adversarial, wall, int(result.queries.sum()))


def seeded_targets(labels: Tensor, classes: int, seed: int = 0) -> Tensor:
    """One random target per clip, different from its label."""
    draw = torch.randint(0, classes - 1, (len(labels),), generator=torch.Generator().manual_seed(seed))
    return torch.where(draw >= labels, draw + 1, draw)


def print_seed_summary(name: str, outcomes: dict[tuple[str, int], Outcome], seeds: list[int]) -> None:
    """Per method: success rate and mean queries of successes averaged over ``seeds``; then the first
    method against each other one on the clips both fool (per seed, and pooled over the seeds)."""
    ran = list(dict.fromkeys(method for method, _ in outcomes))
    print(f"\n{name}, over seeds {seeds}:\n")
    print("| method | mean SR | mean of the per-seed mean Q | per-seed mean Q |")
    print("|---|---:|---:|---|")
    for method in ran:
        runs = [outcomes[method, seed] for seed in seeds]
        means = [metrics.anq(out.queries, out.success) for out in runs]  # nan where a seed fooled nothing
        rates = [metrics.success_rate(out.success) for out in runs]
        fooled = [m for m in means if not math.isnan(m)]
        average = f"{sum(fooled) / len(fooled):,.0f}" if fooled else "-"
        print(f"| {method} | {100 * sum(rates) / len(rates):.0f}% | {average} | "
              f"{', '.join('-' if math.isnan(m) else f'{m:,.0f}' for m in means)} |")
    first = ran[0]
    print(f"\n| {first} vs | clips both fool (per seed) | {first} mean Q on them | other's mean Q on them |")
    print("|---|---|---:|---:|")
    for other in ran[1:]:
        mine: list[float] = []
        theirs: list[float] = []
        counts = []
        for seed in seeds:
            a, b = outcomes[first, seed], outcomes[other, seed]
            both = a.success & b.success
            counts.append(int(both.sum()))
            mine += a.queries[both].tolist()
            theirs += b.queries[both].tolist()
        pooled = f"{sum(mine) / len(mine):,.0f} | {sum(theirs) / len(theirs):,.0f}" if mine else "- | -"
        print(f"| {other} | {', '.join(map(str, counts))} | {pooled} |")
    print()


#: query counts at which the success rates over the seeds are printed (besides the budget)
CHECKPOINTS = (100, 250, 500, 1_000, 2_000, 5_000)


def success_within(runs: list[Outcome], queries: int) -> float:
    """Share of the clip runs in ``runs`` (pooled over seeds) fooled within ``queries`` queries: one point
    of the success-vs-queries curve."""
    fooled = sum(int((out.success & (out.queries <= queries)).sum()) for out in runs)
    return fooled / sum(len(out.success) for out in runs)


def first_shortfall(mine: list[Outcome], theirs: list[Outcome]) -> int | None:
    """The smallest query count at which the success rate of ``mine`` is below that of ``theirs`` (both
    pooled over seeds), or ``None`` when it is at or above it at every count. Only where ``theirs``
    rises, at its successes' counts, can ``mine`` fall behind, so those are the counts checked."""
    rises = sorted({int(q) for out in theirs for q in out.queries[out.success].tolist()})
    return next((q for q in rises if success_within(mine, q) < success_within(theirs, q)), None)


def print_curve_summary(name: str, outcomes: dict[tuple[str, int], Outcome], seeds: list[int], budget: int) -> None:
    """Per method: the success rate within each of :data:`CHECKPOINTS` and ``budget`` queries, pooled over
    ``seeds``; then whether the first method's success-vs-queries curve is at or above each other one's
    at every query count (a comparison that does not depend on which clips each method fools)."""
    ran = list(dict.fromkeys(method for method, _ in outcomes))
    counts = [q for q in CHECKPOINTS if q < budget] + [budget]
    print(f"\n{name}, success rate within Q queries, pooled over seeds {seeds}:\n")
    print("| method | " + " | ".join(f"{q:,}" for q in counts) + " |")
    print("|---|" + "---:|" * len(counts))
    for method in ran:
        runs = [outcomes[method, seed] for seed in seeds]
        print(f"| {method} | " + " | ".join(f"{100 * success_within(runs, q):.0f}%" for q in counts) + " |")
    mine = [outcomes[ran[0], seed] for seed in seeds]
    for other in ran[1:]:
        shortfall = first_shortfall(mine, [outcomes[other, seed] for seed in seeds])
        verdict = "at or above it at every query count" if shortfall is None else f"below it from {shortfall:,} queries"
        print(f"{ran[0]}'s curve against {other}'s: {verdict}")
    print()


def bed_clips(
    name: str, net: nn.Module, split: str, count: int, splits: dict[str, SynthClips]
) -> tuple[Tensor, Tensor, SyntheticAttackerData]:
    """The clips ``[n,T,C,H,W]`` and labels ``[n]`` the zoo model ``name`` is attacked on, the first
    clip of each class it classifies correctly in ``split`` (up to ``count``), from the test bed it was
    trained on, and that bed's attacker data (its training split, V-BAD's and P-BAD's data); ``splits``
    keeps each bed's split loaded across models."""
    attacker_data = SyntheticAttackerData.for_model(name)
    bed = attacker_data.config.bed
    if bed not in splits:
        splits[bed] = load_split(split, SynthConfig(bed=bed))
    videos, labels = correctly_classified_per_class(net, splits[bed].videos, splits[bed].labels)
    return videos[:count], labels[:count], attacker_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="c3d-synth,lrcn-synth")
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--vbad-budget", type=int, default=None, help="budget of vbad/pbad (default --budget)")
    parser.add_argument("--clips", type=int, default=10, help="clips (one per class, first classes)")
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--targeted", action="store_true")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split", default="test", help="test bed split (defaults are chosen on 'val')")
    parser.add_argument("--vsquare-params", default="{}", help='JSON keyword arguments, e.g. {"candidates": 1}')
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; each method runs once per seed")
    args = parser.parse_args()
    seeds = [int(x) for x in args.seeds.split(",") if x]
    torch.set_num_threads(args.threads)
    splits: dict[str, SynthClips] = {}  # test bed -> the split's clips
    vsquare_params = json.loads(args.vsquare_params)
    methods = [m for m in args.methods.split(",") if m]
    print("| model | method | budget | SR | mean Q | median Q | MAP | wall (s) | queries/s | per clip |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in args.models.split(","):
        net = zoo.load(name).eval()
        videos, labels, attacker_data = bed_clips(name, net, args.split, args.clips, splits)
        with torch.no_grad():
            classes = int(net(videos[:1]).shape[1])
        target = seeded_targets(labels, classes) if args.targeted else None
        outcomes: dict[tuple[str, int], Outcome] = {}
        for method, seed in ((m, seed) for m in methods for seed in seeds):
            if method.startswith("art-") and args.targeted:
                continue
            budget = args.vbad_budget if method in ("vbad", "pbad") and args.vbad_budget else args.budget
            if method.startswith("art-"):
                out = run_art(method, net, videos, labels, args.eps, budget, seed)
            else:
                out = run_vidattack(
                    method, net, videos, labels, target, args.eps, budget, args.batch_size, vsquare_params, seed,
                    attacker_data,
                )
            outcomes[method, seed] = out
            ok = out.success
            maps = metrics.map_255(videos[ok], out.adversarial[ok]) if bool(ok.any()) else torch.zeros(0)
            per_clip = " ".join(str(int(q)) if s else "F" for q, s in zip(out.queries, ok, strict=True))
            row = method if len(seeds) == 1 else f"{method} (seed {seed})"
            print(
                f"| {name} | {row} | {budget:,} | {100 * metrics.success_rate(ok):.0f}% | "
                f"{metrics.anq(out.queries, ok):,.0f} | {metrics.mq(out.queries, ok):,.0f} | "
                f"{float(maps.mean()) if len(maps) else float('nan'):.2f} | {out.wall:.0f} | "
                f"{out.total_queries / out.wall:.0f} | {per_clip} |",
                flush=True,
            )
        if len(seeds) > 1:
            print_seed_summary(name, outcomes, seeds)
        if outcomes:
            print_curve_summary(name, outcomes, seeds, args.budget)


if __name__ == "__main__":
    main()
