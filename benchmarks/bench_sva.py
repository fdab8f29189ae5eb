"""SVA acceptance measurement on the test bed (one correctly classified c3d-synth test video per class).

Runs SVA, "No RL" and random key frames (same per-video frame count as SVA, best of 5) through the
registry adapters (one ScoreOracle per attack, budget 3e4 per video, every query counted), prints a
table (FR; Q, MAP, S over the successes, Sec. 4.2) and writes the rows (JSON) and optionally a PNG of
the SVA reward curves.

    # run (split the videos over processes with --skip / --videos; one thread each)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sva.py --methods sva --lr 1e-3 --epochs 10 \\
        --extra '{"sva": {"tile": 2}}' --skip 0 --videos 5 --out runs/sva_0.json
    # random key frames with SVA's per-video counts
    ... --methods sva-random --counts-from runs/sva_0.json,runs/sva_5.json --extra '{"sva-random": {"tile": 2}}'
    # merge the JSON files of several runs into one table and plot the reward curves
    .venv/bin/python benchmarks/bench_sva.py --merge runs/sva_0.json,runs/sva_5.json,... --png docs/sva_reward_curve.png
    # targeted, random seeded target (the campaign runner's rule), 6e4 budget; per-video table of merged runs
    ... --methods sva --budget 60000 --targeted --target-seed 0 --skip 5 --videos 1 --out runs/sva/tgt_5.json
    .venv/bin/python benchmarks/bench_sva.py --merge A.json,B.json --per-video --only 3,9,1
"""
import argparse
import json
import math
import time

import torch

torch.set_num_threads(1)

p = argparse.ArgumentParser()
p.add_argument("--model", default="c3d-synth")
p.add_argument("--methods", default="sva,sva-norl,sva-random")
p.add_argument("--lr", type=float, default=1e-5)
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--budget", type=int, default=30000)
p.add_argument("--videos", type=int, default=10)
p.add_argument("--skip", type=int, default=0, help="skip the first SKIP selected videos (to split a run)")
p.add_argument("--targeted", action="store_true")
p.add_argument("--target-seed", type=int, default=None,
               help="targeted: a random target != label per video (campaign.execution.resolve_target with this "
               "seed, data set 'synth:test'); default: (label + 1) %% 10")
p.add_argument("--extra", default="{}", help='JSON {method: {param: value}} passed to the attacks')
p.add_argument("--out", default="sva_bench.json")
p.add_argument("--png", default="")
p.add_argument("--counts-from", default="", help="JSON files (comma-separated): sva-random uses their SVA frame counts")
p.add_argument("--per-video", action="store_true", help="also print a per-video table")
p.add_argument("--only", default="", help="with --merge: keep only these videos (comma-separated indices)")
p.add_argument("--merge", default="", help="JSON files (comma-separated) to merge and summarise; runs nothing")
args = p.parse_args()


def load_rows(files: str) -> dict:
    merged: dict = {}
    for name in filter(None, files.split(",")):
        for method, rs in json.load(open(name)).items():
            merged.setdefault(method, []).extend(rs)
    return merged


def summary(rs):
    ok = [r for r in rs if r["success"]]

    def mean(k):
        return sum(r[k] for r in ok) / len(ok) if ok else math.nan

    return len(ok) / len(rs), mean("queries"), mean("map"), mean("sparsity")


def per_video(rows: dict) -> None:
    """Markdown table, one row per video: 'MAP / key frames / queries' (or 'fail (frames, queries)')."""
    methods = list(rows)
    videos = sorted({r["video"] for rs in rows.values() for r in rs}, key=lambda v: [
        r["video"] for rs in rows.values() for r in rs].index(v))
    print("\n| video | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods))
    for v in videos:
        cells = []
        for m in methods:
            r = next((r for r in rows[m] if r["video"] == v), None)
            if r is None:
                cells.append("-")
            elif r["success"]:
                cells.append(f"{r['map']:.2f} / {r['frames']} fr / {r['queries']}")
            else:
                cells.append(f"fail ({r['frames']} fr, {r['queries']} q)")
        tgt = next((r.get("target") for rs in rows.values() for r in rs if r["video"] == v), None)
        print(f"| {v}" + ("" if tgt is None else f" (-> {tgt})") + " | " + " | ".join(cells) + " |")


def report(rows: dict) -> None:
    print("\n| method | videos | FR | Q | MAP | S |\n|---|---|---|---|---|---|")
    for m, rs in rows.items():
        fr, q, mp, s = summary(rs)
        print(f"| {m} | {len(rs)} | {fr*100:.0f}% | {q:.0f} | {mp:.3f} | {s*100:.1f}% |")
    if args.per_video:
        per_video(rows)
    curves = [r["curve"] for r in rows.get("sva", []) if r.get("curve")]
    if not curves:
        return
    n = min(len(c) for c in curves)
    mean_curve = [sum(c[e] for c in curves) / len(curves) for e in range(n)]
    k = max(1, n // 4)
    print("mean reward curve:", [round(v, 3) for v in mean_curve])
    print(f"first {k} epochs {sum(mean_curve[:k])/k:.3f} -> last {k} epochs {sum(mean_curve[-k:])/k:.3f}")
    learned = [sum(c[-k:]) / k > sum(c[:k]) / k for c in curves if len(c) >= 2 * k]
    print(f"videos whose reward rose (last {k} vs first {k} epochs): {sum(learned)}/{len(learned)}")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for c in curves:
            ax.plot(range(1, len(c) + 1), c, color="0.75", lw=0.8)
        ax.plot(range(1, n + 1), mean_curve, color="C0", lw=2, label=f"mean over {len(curves)} videos")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean episode reward (Eq. 9)")
        ax.set_title(f"SVA reward per epoch, {args.model}, untargeted", fontsize=10)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)
        print("wrote", args.png)


if args.merge:
    merged = load_rows(args.merge)
    if args.only:
        keep = {int(v) for v in args.only.split(",")}
        merged = {m: [r for r in rs if r["video"] in keep] for m, rs in merged.items()}
    report(merged)
    raise SystemExit(0)

from vidattack import methods, metrics  # noqa: E402
from vidattack.campaign.execution import resolve_target  # noqa: E402
from vidattack.data.synthetic import SynthConfig, generate  # noqa: E402
from vidattack.models import load  # noqa: E402

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
rows: dict = {}
sva_counts = {r["video"]: max(1, r["frames"]) for r in load_rows(args.counts_from).get("sva", [])}
for method in args.methods.split(","):
    rows[method] = []
    for i in chosen:
        video, label = clips.videos[i : i + 1], int(clips.labels[i])
        target = None
        if args.targeted:
            target = ((label + 1) % 10 if args.target_seed is None
                      else resolve_target("random", args.target_seed, "synth:test", i, label, 10))
        params = dict(extra.get(method, {}))
        if method.startswith("sva") and method not in ("sva-norl", "sva-random"):
            params.setdefault("lr", args.lr)
            params.setdefault("epochs", args.epochs)
        if method == "sva-random":
            params["num_frames"] = sva_counts.get(i, 8)
        t = time.time()
        res = methods.run(method, model, video, torch.tensor([label]),
                           target=None if target is None else torch.tensor([target]),
                           budget=args.budget, seed=0, params=params,
                           attacker_data=methods.SyntheticAttackerData())
        extras = res.extras[0]
        row = {"video": i, "success": bool(res.success[0]), "queries": int(res.queries[0]),
               "map": float(metrics.map_255(video, res.adversarial)[0]),
               "sparsity": float(metrics.frame_sparsity(video, res.adversarial)[0]),
               "frames": int(extras["num_key_frames"]), "seconds": round(time.time() - t, 1),
               "stop_reason": extras.get("stop_reason")}
        if target is not None:
            row["target"] = target
        if "reward_curve" in extras:
            row["curve"] = extras["reward_curve"]
            row["queries_at_best"] = extras["queries_at_best"]
            row["episodes_succeeded"] = sum(extras["episode_success"])
            row["episodes"] = len(extras["episode_success"])
            row["final_p"] = [round(x, 3) for x in extras["frame_probs"]]
        if method == "sva":
            sva_counts[i] = max(1, row["frames"])
        rows[method].append(row)
        print(method, {k: v for k, v in row.items() if k not in ("curve", "final_p")}, flush=True)
        json.dump(rows, open(args.out, "w"))
report(rows)
