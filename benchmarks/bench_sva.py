"""SVA acceptance measurement on the test bed (one correctly classified c3d-synth test video per class).

Runs SVA, "No RL" and random key frames (same per-video frame count as SVA, best of 5) through the
registry adapters (one ScoreOracle per attack, budget 3e4 per video), prints a table and writes the
reward curves (JSON) and docs/sva_reward_curve.png.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sva.py [--model c3d-synth] [--lr 1e-3] ...
"""
import argparse
import json
import math
import time

import torch

torch.set_num_threads(1)
from vidattack import metrics
from vidattack.attacks import registry
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.models import load

p = argparse.ArgumentParser()
p.add_argument("--model", default="c3d-synth")
p.add_argument("--methods", default="sva,sva-norl,sva-random")
p.add_argument("--lr", type=float, default=1e-5)
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--budget", type=int, default=30000)
p.add_argument("--videos", type=int, default=10)
p.add_argument("--skip", type=int, default=0, help="skip the first SKIP selected videos (to split a run)")
p.add_argument("--targeted", action="store_true")
p.add_argument("--extra", default="{}")
p.add_argument("--out", default="sva_bench.json")
p.add_argument("--png", default="")
p.add_argument("--counts-from", default="", help="JSON of an earlier run: sva-random uses its SVA frame counts")
p.add_argument("--curves-from", default="", help="JSON files (comma-separated) whose SVA curves are plotted too")
args = p.parse_args()

model = load(args.model).eval()
clips = generate("test", SynthConfig(), indices=range(60))
chosen = []
with torch.no_grad():
    pred = model(clips.videos).argmax(1)
for c in range(10):
    hits = [i for i in range(60) if int(clips.labels[i]) == c and int(pred[i]) == c]
    if hits:
        chosen.append(hits[0])
chosen = chosen[args.skip : args.skip + args.videos]
print("videos", chosen, flush=True)
extra = json.loads(args.extra)
rows, sva_counts, curves = {}, {}, []
if args.counts_from:
    sva_counts = {r["video"]: max(1, r["frames"]) for r in json.load(open(args.counts_from))["sva"]}
for extra_json in filter(None, args.curves_from.split(",")):
    curves += [r["curve"] for r in json.load(open(extra_json)).get("sva", []) if "curve" in r]
for method in args.methods.split(","):
    rows[method] = []
    for vi, i in enumerate(chosen):
        video, label = clips.videos[i : i + 1], int(clips.labels[i])
        target = (label + 1) % 10 if args.targeted else None
        params = dict(extra.get(method, {}))
        if method.startswith("sva") and method not in ("sva-norl", "sva-random"):
            params.setdefault("lr", args.lr); params.setdefault("epochs", args.epochs)
        if method == "sva-random":
            params["num_frames"] = sva_counts.get(i, 8)
        t = time.time()
        res = registry.run(method, model, video, torch.tensor([label]),
                           target=None if target is None else torch.tensor([target]),
                           budget=args.budget, seed=0, params=params)
        row = {"video": i, "success": bool(res.success[0]), "queries": int(res.queries[0]),
               "map": float(metrics.map_255(video, res.adversarial)[0]),
               "sparsity": float(metrics.frame_sparsity(video, res.adversarial)[0]),
               "frames": int(res.extras["num_key_frames"][0]), "seconds": round(time.time() - t, 1)}
        if "reward_curve" in res.extras:
            row["curve"] = res.extras["reward_curve"][0]
            row["queries_at_best"] = res.extras["queries_at_best"][0]
            curves.append(row["curve"])
        if method == "sva":
            sva_counts[i] = max(1, row["frames"])
        rows[method].append(row)
        print(method, {k: v for k, v in row.items() if k != "curve"}, flush=True)

def summary(rs):
    ok = [r for r in rs if r["success"]]
    mean = lambda k: sum(r[k] for r in ok) / len(ok) if ok else math.nan
    return len(ok) / len(rs), mean("queries"), mean("map"), mean("sparsity")

print("\n| method | FR | Q | MAP | S |\n|---|---|---|---|---|")
for m, rs in rows.items():
    fr, q, mp, s = summary(rs)
    print(f"| {m} | {fr*100:.0f}% | {q:.0f} | {mp:.3f} | {s*100:.1f}% |")
if curves:
    n = min(len(c) for c in curves)
    mean_curve = [sum(c[e] for c in curves) / len(curves) for e in range(n)]
    k = max(1, n // 4)
    print("mean reward curve:", [round(v, 3) for v in mean_curve])
    print(f"first {k} epochs {sum(mean_curve[:k])/k:.3f} -> last {k} epochs {sum(mean_curve[-k:])/k:.3f}")
    learned = [sum(c[-k:]) / k > sum(c[:k]) / k for c in curves if len(c) >= 2 * k]
    print(f"videos whose reward rose (last {k} vs first {k} epochs): {sum(learned)}/{len(learned)}")
    if args.png:
        import matplotlib; matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for c in curves:
            ax.plot(range(1, len(c) + 1), c, color="0.75", lw=0.8)
        ax.plot(range(1, n + 1), mean_curve, color="C0", lw=2, label=f"mean over {len(curves)} videos")
        ax.set_xlabel("epoch"); ax.set_ylabel("mean episode reward (Eq. 9)")
        ax.set_title(f"SVA reward per epoch, {args.model}, untargeted, lr {args.lr:g}")
        ax.legend(); fig.tight_layout(); fig.savefig(args.png, dpi=120)
json.dump(rows, open(args.out, "w"))
