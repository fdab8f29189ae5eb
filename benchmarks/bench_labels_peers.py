"""Label-only peers on the same clips: Video RayS vs Heuristic, Opt-attack and IBM ART's HopSkipJump.

For one zoo model, the first correctly classified clip of every class (test-bed indices 0-99 of the
split) is attacked untargeted by each method, one clip at a time, and every forward pass of the model is
seen by a recorder wrapped around it. The recorder counts the rows the model evaluates (the queries)
and keeps, after every call, the smallest L-inf and the smallest MAP among the *adversarial* points
queried so far, with the wall time. One run per method and clip at the largest budget then gives every
smaller budget: at budget ``b`` a method has reached what it had queried within its first ``b`` queries.

Reading "best adversarial point queried" rather than each method's returned video treats all methods
alike (ART's attacks are stopped by the recorder when the budget is spent and return nothing); it can
only favour the peers, which do not all return their best L-inf point. Heuristic and Opt-attack minimise
MAP / L2 and stop at a MAP target: it is set to 1e-3 so that they run to the budget. Video RayS runs in
its minimising form (its bounded form follows the same path and stops at the first point within eps).

Printed per method and budget: the share of clips with an adversarial point within ``--eps`` (L-inf),
the median L-inf and median MAP (0-255) of the best points (``inf`` for a clip with none), the wall time
summed over clips up to that budget, and queries per second (queries / that wall time).

    OMP_NUM_THREADS=1 python benchmarks/bench_labels_peers.py --model c3d-synth \
        [--split test] [--budgets 1000,5000,20000] [--methods vrays,heuristic,opt,hsj-inf,hsj-l2] \
        [--peer-max 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch import nn

ALL_METHODS = ("vrays", "heuristic", "opt", "hsj-inf", "hsj-l2", "signopt")


class BudgetStop(RuntimeError):
    """Raised by the recorder before a forward pass that would exceed its limit (for ART's attacks)."""


class Recorder(nn.Module):
    """Wraps a model; counts evaluated rows and tracks the best adversarial points seen (untargeted)."""

    def __init__(self, model: nn.Module, clean: torch.Tensor, label: int, limit: int | None = None) -> None:
        super().__init__()
        self.model, self.clean, self.label, self.limit = model, clean, label, limit
        self.num_classes = getattr(model, "num_classes", None)  # declared: no probe forward to count
        self.count = 0
        self.best_linf = math.inf
        self.best_map = math.inf
        self.linf_at_best_map = math.inf
        self.started = time.perf_counter()
        # (queries, best L-inf, best MAP, seconds since start) after every forward call
        self.curve: list[tuple[int, float, float, float]] = []

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        rows = videos.shape[0]
        if self.limit is not None and self.count + rows > self.limit:
            raise BudgetStop(f"{self.count} + {rows} > {self.limit}")
        logits = self.model(videos)
        self.count += rows
        with torch.no_grad():
            adversarial = logits.argmax(1) != self.label
            if bool(adversarial.any()):
                delta = (videos[adversarial].detach().float() - self.clean.unsqueeze(0)).flatten(1)
                self.best_linf = min(self.best_linf, float(delta.abs().max(1).values.min()))
                maps = delta.abs().mean(1) * 255.0
                if float(maps.min()) < self.best_map:
                    self.best_map = float(maps.min())
                    self.linf_at_best_map = float(delta[int(maps.argmin())].abs().max())
        self.curve.append((self.count, self.best_linf, self.best_map, time.perf_counter() - self.started))
        return logits

    def at(self, budget: int) -> tuple[float, float, float, int]:
        """``(best L-inf, best MAP, seconds, queries)`` within the first ``budget`` queries."""
        best = (math.inf, math.inf, 0.0, 0)
        for count, linf, map_, seconds in self.curve:
            if count > budget:
                break
            best = (linf, map_, seconds, count)
        return best


class FlatVideo(nn.Module):
    """``[N, T*C*H*W]`` -> the video model (ART's classifiers see flat vectors)."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model, self.shape = model, shape

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        # ART hands over float64 arrays from its NumPy arithmetic; the model runs in float32.
        return self.model(flat.float().reshape(-1, *self.shape))


def chosen_clips(net: nn.Module, split: str, count: int = 100) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """First correctly classified clip of every class among the split's first ``count`` clips."""
    from vidattack.data.synthetic import SynthConfig, generate

    clips = generate(split, SynthConfig(frames=16, size=32), indices=range(count))
    with torch.no_grad():
        preds = torch.cat([net(clips.videos[i : i + 20]).argmax(1) for i in range(0, count, 20)])
    chosen: dict[int, int] = {}
    for i in range(count):
        y = int(clips.labels[i])
        if int(preds[i]) == y and y not in chosen:
            chosen[y] = i
    order = [chosen[c] for c in sorted(chosen)]
    return clips.videos[order], clips.labels[order], order


def run_method(
    method: str, net: nn.Module, video: torch.Tensor, label: int, budget: int, seed: int, params: dict[str, Any]
) -> Recorder:
    """Attack one clip ``[1,T,C,H,W]`` with ``method`` within ``budget`` queries; returns the recorder."""
    recorder = Recorder(net, video[0], label)
    if method == "vrays":
        from vidattack.attacks.video_rays import video_rays
        from vidattack.threat import LabelOracle

        oracle = LabelOracle(recorder, budget=budget, batch_size=64)
        video_rays(
            oracle, video, torch.tensor([label]), form="minimising",
            generator=torch.Generator().manual_seed(seed), **params,
        )
    elif method in ("heuristic", "opt"):
        from vidattack import methods

        methods.run(
            method, recorder, video, torch.tensor([label]), budget=budget, seed=seed, batch_size=64,
            params={"map_target": 1e-3, **params}, attacker_data=methods.SyntheticAttackerData(),
        )
    elif method in ("hsj-inf", "hsj-l2", "signopt"):
        from art.attacks.evasion import HopSkipJump, SignOPTAttack
        from art.estimators.classification import PyTorchClassifier

        recorder.limit = budget
        shape = tuple(video.shape[1:])
        classifier = PyTorchClassifier(
            FlatVideo(recorder, shape), loss=nn.CrossEntropyLoss(), input_shape=(int(np.prod(shape)),),
            nb_classes=int(params.get("classes", 10)), clip_values=(0.0, 1.0),
        )
        np.random.seed(seed)  # ART draws from NumPy's global generator
        if method == "signopt":
            attack = SignOPTAttack(classifier, targeted=False, query_limit=budget, batch_size=64, verbose=False)
        else:
            attack = HopSkipJump(
                classifier, batch_size=64, targeted=False, norm=np.inf if method == "hsj-inf" else 2,
                max_iter=100_000, max_eval=10_000, init_eval=100, init_size=100, verbose=False,
            )
        flat = video.reshape(1, -1).numpy()
        onehot = np.eye(int(params.get("classes", 10)), dtype=np.float32)[[label]]
        try:
            attack.generate(x=flat, y=onehot)
        except BudgetStop:
            pass
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(ALL_METHODS)}")
    return recorder


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def table_row(method: str, budget: int, recorders: list[Recorder], eps: float) -> str:
    """One markdown row: share within ``eps``, median L-inf and MAP, wall time and queries/s at ``budget``."""
    points = [r.at(budget) for r in recorders]
    within = sum(linf <= eps + 1e-9 for linf, *_ in points)
    wall = sum(seconds for _, _, seconds, _ in points)
    queries = sum(count for *_, count in points)
    return (
        f"| {method} | {budget} | {within}/{len(points)} | {median([p[0] for p in points]):.4f} | "
        f"{median([p[1] for p in points]):.2f} | {wall:.0f} | {queries / max(wall, 1e-9):.0f} |"
    )


def merge_tables(paths: list[str], budgets: list[int], eps: float) -> None:
    """Print the table of several ``--json`` dumps of one model as if they were one run."""
    runs: dict[str, list[Recorder]] = {}
    clips: list[int] = []
    for path in paths:
        with open(path) as handle:
            dump = json.load(handle)
        clips += dump["clips"]
        for method, curves in dump["runs"].items():
            for curve in curves:
                recorder = Recorder(nn.Identity(), torch.zeros(1), -1)
                recorder.curve = [tuple(point) for point in curve]  # type: ignore[misc]
                runs.setdefault(method, []).append(recorder)
    print(f"merged {', '.join(paths)}: clips {clips}")
    print("| method | budget | within eps | median L-inf | median MAP | wall (s) | queries/s |")
    print("|---|---|---|---|---|---|---|")
    for method, recorders in runs.items():
        for budget in budgets:
            print(table_row(method, budget, recorders, eps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="c3d-synth")
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--budgets", default="1000,5000,20000")
    parser.add_argument("--methods", default="vrays,heuristic,opt,hsj-inf,hsj-l2")
    parser.add_argument("--peer-max", type=int, default=None,
                        help="largest budget for methods other than vrays and heuristic (CPU time)")
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N clips only")
    parser.add_argument("--clips", default=None,
                        help="positions in the chosen clip list, e.g. 0-4 (a long run split over processes)")
    parser.add_argument("--vrays-params", default="{}", help="JSON dict of video_rays keyword arguments")
    parser.add_argument("--json", default=None, help="write per-clip curves here")
    parser.add_argument("--merge", default=None,
                        help="comma-separated --json files of one model (e.g. a run split by --clips): print "
                             "their joint table at --budgets and exit")
    args = parser.parse_args()
    if args.merge:
        merge_tables(args.merge.split(","), [int(b) for b in args.budgets.split(",")], args.eps)
        return
    from vidattack import models

    torch.set_num_threads(1)
    net = models.load(args.model).eval()
    videos, labels, order = chosen_clips(net, args.split)
    if args.limit:
        videos, labels, order = videos[: args.limit], labels[: args.limit], order[: args.limit]
    if args.clips:
        first, _, last = args.clips.partition("-")
        keep = slice(int(first), int(last or first) + 1)
        videos, labels, order = videos[keep], labels[keep], order[keep]
    budgets = [int(b) for b in args.budgets.split(",")]
    vrays_params = json.loads(args.vrays_params)
    print(f"model {args.model}, {args.split} clips {order}, eps {args.eps}, seed {args.seed}, budgets {budgets}")
    print("| method | budget | within eps | median L-inf | median MAP | wall (s) | queries/s |")
    print("|---|---|---|---|---|---|---|")
    dump: dict[str, Any] = {"model": args.model, "split": args.split, "clips": order, "runs": {}}
    for method in args.methods.split(","):
        top = max(budgets)
        if args.peer_max is not None and method not in ("vrays", "heuristic"):
            top = min(top, args.peer_max)
        recorders = []
        for i in range(len(order)):
            params = vrays_params if method == "vrays" else {}
            recorders.append(
                run_method(method, net, videos[i : i + 1], int(labels[i]), top, args.seed, params)
            )
            # one line per clip, so that a run cut short still leaves its finished clips
            at = {b: recorders[-1].at(b) for b in budgets if b <= top}
            print(f"# {method} clip {order[i]}: " + ", ".join(
                f"{b}: linf {v[0]:.4f} map {v[1]:.2f} {v[2]:.0f}s" for b, v in at.items()), flush=True)
            # the L-inf of the sparsest point (a MAP reached at a larger L-inf than the best one)
            print(f"#   linf at best map {recorders[-1].linf_at_best_map:.4f}", flush=True)
        dump["runs"][method] = [r.curve for r in recorders]
        for budget in budgets:
            if budget > top:
                print(f"| {method} | {budget} | not run (CPU time) | | | | |", flush=True)
                continue
            print(table_row(method, budget, recorders, args.eps), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dump, handle)


if __name__ == "__main__":
    main()
