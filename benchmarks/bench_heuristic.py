"""Heuristic attack / Opt-attack measurements on the zoo (results in benchmarks/results_heuristic.md).

    OMP_NUM_THREADS=1 python benchmarks/bench_heuristic.py run MODEL --variants opt,temp,tempspat \
        --budget B --map-target M [--targeted] [--limit 10] [--videos 3,17] [--params k=v,...] --out FILE.jsonl
    python benchmarks/bench_heuristic.py table FILE.jsonl [--by variant|omega|phi] [--model NAME]

``run``: one correctly classified test video per class (the first in index order among test clips
0-99 of the 16x32x32 test bed), attacked through ``vidattack.methods.run`` exactly as the CLI
and the campaign runner do. Per (variant, video) it appends one JSON line: success, the oracles' query
count, MAP, MAP* over the attack's mask and over the perturbed pixels, pixel sparsity, frames kept,
the queries spent before the first gradient step, and the trace. Targeted: one target per video,
``(label + 1 + r) % 10`` with ``r`` drawn from a generator seeded by ``1000 + video`` (fixed per video,
the same for every variant). ``table``: the Markdown table of the results file.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import OrderedDict

import torch

VARIANTS = {
    "opt": ("opt", {}),
    "temp": ("heuristic", {"spatial": False}),
    "tempspat": ("heuristic", {"spatial": True}),
}


def chosen_videos(net: torch.nn.Module, frames: int, size: int, count: int = 100) -> list[int]:
    """First correctly classified test clip of every class, in class order."""
    from vidattack.data.synthetic import SynthConfig, generate

    clips = generate("test", SynthConfig(frames=frames, size=size), indices=range(count))
    with torch.no_grad():
        preds = torch.cat([net(clips.videos[i : i + 20]).argmax(1) for i in range(0, count, 20)])
    chosen: dict[int, int] = {}
    for i in range(count):
        y = int(clips.labels[i])
        if int(preds[i]) == y and y not in chosen:
            chosen[y] = i
    return [chosen[c] for c in sorted(chosen)]


def run(args: argparse.Namespace) -> None:
    from vidattack import methods, metrics, models
    from vidattack.data.synthetic import SynthConfig, generate
    from vidattack.methods import SyntheticAttackerData

    torch.set_num_threads(1)
    net = models.load(args.model)
    frames, size = 16, 32
    order = chosen_videos(net, frames, size)[: args.limit]
    if args.videos:
        order = [int(v) for v in args.videos.split(",")]
    clips = generate("test", SynthConfig(frames=frames, size=size), indices=range(max(order) + 1))
    extra = {}
    for item in filter(None, args.params.split(",")):
        key, value = methods.parse_param("heuristic", item)
        extra[key] = value
    with open(args.out, "a") as out:
        for name in args.variants.split(","):
            method, params = VARIANTS[name]
            params = {**params, **extra}
            if args.map_target is not None:
                params["map_target"] = args.map_target
            if method == "opt":
                params = {k: v for k, v in params.items() if k in methods.parameters("opt")}
            for idx in order:
                x = clips.videos[idx : idx + 1]
                y = int(clips.labels[idx])
                target = None
                if args.targeted:
                    g = torch.Generator().manual_seed(1000 + idx)
                    target = int((y + 1 + torch.randint(0, 9, (1,), generator=g)) % 10)
                t0 = time.time()
                r = methods.run(
                    method, net, x, torch.tensor([y]),
                    target=None if target is None else torch.tensor([target]),
                    budget=args.budget, seed=args.seed, params=params,
                    attacker_data=SyntheticAttackerData(),  # the zoo's own training split
                )
                extras = r.extras[0]
                with torch.no_grad():
                    pred = int(net(r.adversarial).argmax(1)[0])  # independent check, not counted
                mask = extras.get("mask")
                row = dict(
                    model=args.model, variant=name, video=idx, label=y, target=target,
                    success=bool(r.success[0]), queries=int(r.queries[0]), pred=pred,
                    adv_label=int(r.adv_label[0]), iterations=int(r.iterations[0]),
                    map=float(metrics.map_255(x, r.adversarial)[0]),
                    map_star_support=float(metrics.map_star_255(x, r.adversarial)[0]),
                    map_star_mask=float(metrics.map_star_255(x, r.adversarial, mask)[0]) if mask is not None else None,
                    S=float(metrics.pixel_sparsity(x, r.adversarial)[0]),
                    frame_S=float(metrics.frame_sparsity(x, r.adversarial)[0]),
                    init_queries=int(extras["init_queries"]),
                    importance_queries=int(extras.get("importance_queries", 0)),
                    frames_kept=int(extras.get("frames_kept", frames)),
                    converged=bool(extras["converged"]), stop_reason=extras["stop_reason"], seconds=round(time.time() - t0, 1),
                    params={k: (str(v) if isinstance(v, float) and math.isinf(v) else v) for k, v in params.items()},
                    budget=args.budget, date=time.strftime("%Y-%m-%d"),
                    trace=[(q, round(m, 4)) for q, m, _ in r.trace[0]],
                )
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(name, idx, row["success"], row["queries"], round(row["map"], 3), round(row["S"], 3),
                      row["frames_kept"], row["init_queries"], row["seconds"], flush=True)


def _key(row: dict, by: str) -> str:
    return row["variant"] if by == "variant" else f'{by}={row["params"].get(by)}'


def table(rows: list[dict], by: str = "variant") -> tuple[str, dict]:
    """Markdown table grouped by variant or by a parameter; returns (text, per-group stats)."""
    groups: OrderedDict[str, list[dict]] = OrderedDict()
    for r in rows:
        groups.setdefault(_key(r, by), []).append(r)
    lines = [
        f"| {by} | videos | FR (%) | MQ | MQ (fail = budget) | MAP | MAP* (mask) | MAP* (perturbed px) "
        "| S (%) | frames kept | init queries (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    stats = {}

    def mean(f, xs):  # noqa: ANN001, ANN202
        return sum(f(x) for x in xs) / len(xs) if xs else float("nan")

    for k, rs in groups.items():
        ok = [r for r in rs if r["success"]]
        mq = statistics.median([r["queries"] for r in ok]) if ok else float("nan")
        mq_all = statistics.median([r["queries"] if r["success"] else r["budget"] for r in rs])
        ms = mean(lambda r: r["map_star_mask"] if r["map_star_mask"] is not None else r["map_star_support"], ok)
        lines.append(
            f'| {k} | {len(rs)} | {100 * len(ok) / len(rs):.0f} | {mq:.0f} | {mq_all:.0f} | '
            f'{mean(lambda r: r["map"], ok):.3f} | {ms:.3f} | {mean(lambda r: r["map_star_support"], ok):.3f} | '
            f'{100 * mean(lambda r: r["S"], ok):.1f} | {mean(lambda r: r["frames_kept"], ok):.1f} | '
            f'{statistics.median([r["init_queries"] for r in rs]):.0f} |'
        )
        stats[k] = dict(mq=mq, mq_all=mq_all, fr=len(ok) / len(rs))
    return "\n".join(lines), stats


def first_reach(row: dict, level: float) -> int | None:
    """Queries at the first trace point whose MAP is <= ``level`` (``None``: never reached)."""
    return next((q for q, m in row["trace"] if m <= level), None)


def compare(rows: list[dict], other: str = "tempspat") -> str:
    """Equal-MAP comparison per video: the MAP plain Opt-attack reached when it stopped, and the queries
    each variant needed to first reach that MAP (from the traces, which record the MAP after the
    initialisation and after every direction update)."""
    by = {(r["variant"], r["video"]): r for r in rows}
    lines = [f"| video | Opt: queries | Opt: final MAP | {other}: queries to reach that MAP | ratio |", "|---|---|---|---|---|"]
    ratios, opt_q, other_q = [], [], []
    for (variant, video), r in sorted(by.items(), key=lambda kv: kv[0][1]):
        if variant != "opt" or (other, video) not in by:
            continue
        q = first_reach(by[(other, video)], r["map"])
        lines.append(f'| {video} | {r["queries"]} | {r["map"]:.3f} | {q} | {q / r["queries"]:.3f} |' if q else
                     f'| {video} | {r["queries"]} | {r["map"]:.3f} | not reached | - |')
        if q:
            ratios.append(q / r["queries"])
            opt_q.append(r["queries"])
            other_q.append(q)
    if ratios:
        lines.append(f"\nmedian queries Opt {statistics.median(opt_q):.0f} vs {other} {statistics.median(other_q):.0f} "
                     f"(ratio of medians {statistics.median(other_q) / statistics.median(opt_q):.3f}) to reach Opt's final MAP")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("model")
    p.add_argument("--variants", default="opt,temp,tempspat")
    p.add_argument("--budget", type=int, default=20000)
    p.add_argument("--map-target", type=float, default=None)
    p.add_argument("--targeted", action="store_true")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--params", default="")
    p.add_argument("--videos", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    t = sub.add_parser("table")
    t.add_argument("file")
    t.add_argument("--by", default="variant")
    t.add_argument("--model", default=None)
    t.add_argument("--compare", default="", help="also print the equal-MAP comparison of Opt vs this variant")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args)
        return
    rows = [json.loads(line) for line in open(args.file)]
    if args.model:
        rows = [r for r in rows if r["model"] == args.model]
    text, stats = table(rows, args.by)
    print(text)
    if "opt" in stats and "tempspat" in stats:
        print(
            f'\nMQ ratio Temp.+Spat. / Opt (successes): {stats["tempspat"]["mq"] / stats["opt"]["mq"]:.3f}; '
            f'(failures counted at budget): {stats["tempspat"]["mq_all"] / stats["opt"]["mq_all"]:.3f}'
        )
    if args.compare:
        print("\n" + compare(rows, args.compare))
        won = {r["video"]: r["queries"] for r in rows if r["variant"] == "opt" and r["success"]}
        both = [(won[r["video"]], r["queries"]) for r in rows
                if r["variant"] == args.compare and r["success"] and r["video"] in won]
        if both:
            a, b = statistics.median(q for q, _ in both), statistics.median(q for _, q in both)
            print(f"videos both Opt and {args.compare} fooled: {len(both)}; MQ Opt {a:.0f} vs {args.compare} {b:.0f} "
                  f"(ratio {b / a:.3f})")
    if "opt" in stats and "temp" in stats:
        print(
            f'MQ ratio Temp. / Opt (successes): {stats["temp"]["mq"] / stats["opt"]["mq"]:.3f}; '
            f'(failures counted at budget): {stats["temp"]["mq_all"] / stats["opt"]["mq_all"]:.3f}'
        )


if __name__ == "__main__":
    main(sys.argv[1:])
