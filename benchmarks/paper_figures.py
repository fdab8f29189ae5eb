"""The papers' qualitative figures on the test-bed zoo (issue 23): one PNG per figure, and its numbers.

Each figure attacks test-split clips of the synthetic motion test bed through the methods registry
(:func:`vidattack.methods.run`), draws the clean frames, the adversarial frames and the amplified
perturbation with :func:`vidattack.viz.frame_grid`, and prints what the figure shows: success, queries,
L-inf, MAP (0-255), which frames carry a perturbation and the frame sparsity S.

| figure | paper | attack here |
|---|---|---|
| ``vbad-fig1`` | V-BAD Fig. 1, a targeted example | ``vbad``, c3d-synth, targeted, budget 10^5 |
| ``heuristic-fig2`` | Heuristic Fig. 2, untargeted frames + perturbations | ``heuristic`` (Temp. + Spat.), c3d-synth, MAP-stop 3.0, budget 2 x 10^4, 2 clips |
| ``sva-fig4`` | SVA Fig. 4, untargeted examples | ``sva``, c3d-synth, budget 3 x 10^4, 2 clips |
| ``sva-fig5`` | SVA Fig. 5, a targeted example | ``sva``, c3d-synth, targeted, budget 6 x 10^4 |
| ``sparse-fig7`` | Sparse l2,1 Fig. 7, the one perturbed frame (S = 97.5%) | ``sparse`` l2,1, mask ``first:1``, lambda 0.1, lrcn-synth, 4 clips |
| ``flicker-fig1`` | Flickering Fig. 1, a single-video example | ``flicker``, c3d-synth, 3,000 steps (+ an RGB offsets plot) |

Clips: the test split in a seeded random order (``--seed``), keeping the first ones the attacked model
classifies correctly; targets: the campaign runner's seeded random target (``resolve_target``). The
settings are those of the results files' measured rows (``benchmarks/results_*.md``). ``--tiny`` runs
every attack with a tiny budget (seconds; for the tests, the figures then show failures).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/paper_figures.py --figure all --out docs/figures
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidattack import methods, metrics, models, viz
from vidattack.campaign.execution import resolve_target
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.selection import predict

#: The test split the clips come from (the campaign runner's data set name, for the seeded targets).
SPLIT, DATASET = "test", "synth:test"
NUM_CLASSES = 10
#: Columns of one PNG: with 32x32 frames, 8 columns keep a figure near 100 KB.
MAX_COLUMNS = 8


@dataclass(frozen=True)
class Figure:
    """One paper figure: the attack that makes it and how many clips and frames it shows."""

    paper: str
    model: str
    method: str
    clips: int
    budget: int | None
    tiny_budget: int | None
    params: dict[str, Any] = field(default_factory=dict)
    tiny_params: dict[str, Any] = field(default_factory=dict)
    targeted: bool = False
    consecutive: bool = False  # show consecutive frames (the flicker), not the perturbed ones first


FIGURES: dict[str, Figure] = {
    "vbad-fig1": Figure("V-BAD Fig. 1 (targeted)", "c3d-synth", "vbad", 1, 100_000, 300, targeted=True),
    "heuristic-fig2": Figure(
        "Heuristic Fig. 2 (untargeted, Temp. + Spat.)", "c3d-synth", "heuristic", 2, 20_000, 300,
        params={"spatial": True, "map_target": 3.0},
    ),
    "sva-fig4": Figure(
        "SVA Fig. 4 (untargeted)", "c3d-synth", "sva", 2, 30_000, 600,
        params={"lr": 1e-3, "epochs": 10, "tile": 2}, tiny_params={"epochs": 1, "episodes": 2},
    ),
    "sva-fig5": Figure(
        "SVA Fig. 5 (targeted)", "c3d-synth", "sva", 1, 60_000, 600,
        params={"lr": 1e-3, "epochs": 10, "tile": 2}, tiny_params={"epochs": 1, "episodes": 2}, targeted=True,
    ),
    "sparse-fig7": Figure(
        "Sparse l2,1 Fig. 7 (one perturbed frame)", "lrcn-synth", "sparse", 4, None, None,
        params={"mask": "first:1", "norm": "l21", "lam": 0.1}, tiny_params={"steps": 5},
    ),
    "flicker-fig1": Figure(
        "Flickering Fig. 1 (single video)", "c3d-synth", "flicker", 1, None, None,
        params={"steps": 3000}, tiny_params={"steps": 5, "lam": 1.0}, consecutive=True,
    ),
}  # fmt: skip


def correct_clips(model: Callable[[Tensor], Tensor], count: int, seed: int) -> list[tuple[int, Tensor, int]]:
    """``count`` test clips ``(index, video [1,T,C,H,W], label)`` the model gets right, in a seeded order."""
    order = torch.randperm(SynthConfig().n_for(SPLIT), generator=torch.Generator().manual_seed(seed)).tolist()
    chosen: list[tuple[int, Tensor, int]] = []
    for start in range(0, len(order), 4 * count):
        block = order[start : start + 4 * count]
        clips = generate(SPLIT, indices=block)
        right = predict(model, clips.videos) == clips.labels
        for position, index in enumerate(block):
            if bool(right[position]) and len(chosen) < count:
                chosen.append((index, clips.videos[position : position + 1], int(clips.labels[position])))
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"fewer than {count} correctly classified {SPLIT} clips")


def perturbed_frames(clean: Tensor, adversarial: Tensor) -> list[int]:
    """Indices of the frames of one video ``[1,T,C,H,W]`` whose perturbation is not exactly zero."""
    per_frame = (adversarial - clean).abs().flatten(2).amax(dim=2)[0]
    return [int(t) for t in (per_frame > 0).nonzero().flatten()]


def foreground(index: int) -> Tensor:
    """``bool [T,H,W]``: where test clip ``index`` shows its moving object.

    The same clip rendered without clutter (flat background, no distractors or noise) differs from its
    background colour only on the object.
    """
    flat = generate(SPLIT, SynthConfig(clutter=False), indices=[index]).videos[0]  # [T,C,H,W]
    background = flat.flatten(2).median(dim=2).values[..., None, None]  # the object covers a minority
    return (flat - background).abs().amax(dim=1) > 1.5 / 255


def foreground_share(
    clean: Tensor, adversarial: Tensor, index: int, frames: Sequence[int]
) -> tuple[float, float]:
    """Share of the perturbation's L1 mass on the object, and the object's share of the perturbed frames' pixels."""
    mask = foreground(index)
    mass = (adversarial - clean)[0].abs().sum(dim=1)  # [T,H,W]
    total = float(mass.sum())
    on_object = float(mass[mask].sum()) / total if total > 0 else 0.0
    area = float(mask[list(frames)].float().mean()) if frames else 0.0
    return on_object, area


@torch.no_grad()
def probabilities(model: Callable[[Tensor], Tensor], video: Tensor, classes: dict[str, int | None]) -> str:
    """``name p=...`` of the model's softmax on ``video [1,T,C,H,W]`` for each named class."""
    probs = torch.softmax(model(video), dim=1)[0]
    return ", ".join(f"p({name} {c}) {float(probs[c]):.3f}" for name, c in classes.items() if c is not None)


@torch.no_grad()
def target_mixes(model: Callable[[Tensor], Tensor], clean: Tensor, target: int, frames: Sequence[int]) -> str:
    """How often SVA's targeted start point exists: the clean clip with ``frames`` taken from a target-class
    clip of the attacker's pool (the registry's source of SVA target clips), classified as the target."""
    pool, labels = methods.SyntheticAttackerData().pool(60, tuple(clean.shape[1:]))
    starts = pool[labels == target]
    counts = []
    for chosen in (list(frames), list(range(clean.shape[1]))):
        mixes = clean.repeat(len(starts), 1, 1, 1, 1)
        mixes[:, chosen] = starts[:, chosen]
        counts.append(f"{int((predict(model, mixes) == target).sum())}/{len(starts)} on {len(chosen)} frames")
    return "target-class start clips mixed in on the key frames, classified as the target: " + ", ".join(
        counts
    )


def frames_to_show(perturbed: Sequence[int], length: int, columns: int, consecutive: bool) -> list[int]:
    """The frames a figure shows: perturbed ones first (a sparse attack's point), one clean for contrast.

    With every frame perturbed (or ``consecutive``), ``columns`` frames: consecutive from 0, or spread
    uniformly over the clip.
    """
    if consecutive:
        return list(range(min(columns, length)))
    if 0 < len(perturbed) < length:
        clean = [t for t in range(length) if t not in perturbed]
        return sorted(list(perturbed[: columns - 1]) + clean[:1])
    step = (length - 1) / max(columns - 1, 1)
    return sorted({round(i * step) for i in range(min(columns, length))})


def describe(clean: Tensor, adversarial: Tensor, result: Any, row: int) -> dict[str, Any]:
    """The numbers a figure shows for video ``row`` of ``result`` (clean / adversarial ``[1,T,C,H,W]``)."""
    frames = perturbed_frames(clean, adversarial)
    extras = result.extras[row]
    out = {
        "success": bool(result.success[row]),
        "queries": int(result.queries[row]),
        "iterations": int(result.iterations[row]),
        "label": int(result.label[row]),
        "target": None if result.target is None else int(result.target[row]),
        "adv_label": int(result.adv_label[row]),
        "linf": float(metrics.lp_norms(clean, adversarial)["linf"][0]),
        "map": float(metrics.map_255(clean, adversarial)[0]),
        "map_perturbed_frames": float(metrics.frame_norms(clean, adversarial)["map"][0, frames].mean()) if frames else 0.0,
        "frame_sparsity": float(metrics.frame_sparsity(clean, adversarial)[0]),
        "pixel_sparsity": float(metrics.pixel_sparsity(clean, adversarial)[0]),
        "perturbed_frames": frames,
        "frames": int(clean.shape[1]),
        "stop_reason": extras.get("stop_reason"),
    }  # fmt: skip
    if "mask" in extras and isinstance(extras["mask"], Tensor):  # Heuristic: MAP* over its region
        out["map_star"] = float(metrics.map_star_255(clean, adversarial, extras["mask"].unsqueeze(0))[0])
    if "episode_success" in extras:  # SVA: how many of the agent's episodes fooled the model
        out["episodes_fooled"] = (
            f"{sum(map(bool, extras['episode_success']))}/{len(extras['episode_success'])}"
        )
    for key in ("final_eps", "lam", "num_key_frames", "delta_thickness", "delta_roughness"):
        if key in extras:
            value = extras[key]
            out[key] = float(value) if isinstance(value, (float, Tensor)) else value
    return out


def _line(name: str, index: int, numbers: dict[str, Any]) -> str:
    target = f" -> target {numbers['target']}" if numbers["target"] is not None else ""
    parts = [
        f"{name} clip {index}: label {numbers['label']}{target}, adversarial prediction {numbers['adv_label']}",
        f"success {numbers['success']} ({numbers['stop_reason']})",
        f"queries {numbers['queries']}, iterations {numbers['iterations']}",
        f"L-inf {numbers['linf']:.4f}, MAP {numbers['map']:.3f} (on the perturbed frames {numbers['map_perturbed_frames']:.3f})",
        f"perturbed frames {len(numbers['perturbed_frames'])}/{numbers['frames']} {numbers['perturbed_frames']}, "
        f"S {100 * numbers['frame_sparsity']:.1f}%, pixel sparsity {100 * numbers['pixel_sparsity']:.1f}%",
    ]  # fmt: skip
    parts.append(
        f"perturbation on the moving object: {100 * numbers['on_object']:.1f}% of its L1 mass "
        f"(the object covers {100 * numbers['object_area']:.1f}% of the perturbed frames' pixels)"
    )
    extra = {
        k: numbers[k]
        for k in ("map_star", "final_eps", "lam", "delta_thickness", "delta_roughness", "episodes_fooled")
        if k in numbers
    }
    if extra:
        parts.append(
            ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items())
        )
    return "\n    ".join(parts)


def make_figure(name: str, out: Path, *, seed: int, tiny: bool) -> list[dict[str, Any]]:
    """Attack the figure's clips, write ``out/NAME.png`` (and the flicker's offsets plot), print the numbers."""
    figure = FIGURES[name]
    model = models.load(figure.model).eval()
    params = {**figure.params, **(figure.tiny_params if tiny else {})}
    budget = figure.tiny_budget if tiny else figure.budget
    columns = max(1, MAX_COLUMNS // figure.clips)
    print(f"== {name}: {figure.paper}, {figure.model}, method {figure.method}, budget {budget}, params {params}",
          flush=True)  # fmt: skip
    cleans, adversarials, shown, titles, rows = [], [], [], [], []
    for index, video, label in correct_clips(model, figure.clips, seed):
        target = (
            resolve_target("random", seed, DATASET, index, label, NUM_CLASSES) if figure.targeted else None
        )
        started = time.perf_counter()
        result = methods.run(
            figure.method, model, video, torch.tensor([label]),
            target=None if target is None else torch.tensor([target]), budget=budget, seed=seed, params=params,
            attacker_data=methods.SyntheticAttackerData(),  # the zoo's own training split, never the test clips
        )  # fmt: skip
        adversarial = result.adversarial.detach().cpu()
        numbers = {"clip": index, "seconds": round(time.perf_counter() - started, 1),
                   **describe(video, adversarial, result, 0)}  # fmt: skip
        numbers["on_object"], numbers["object_area"] = foreground_share(
            video, adversarial, index, numbers["perturbed_frames"]
        )
        print("  " + _line(name, index, numbers) + f"\n    {numbers['seconds']} s", flush=True)
        classes = {"label": label, "target": target, "adversarial": numbers["adv_label"]}
        print(f"    adversarial video: {probabilities(model, adversarial, classes)}", flush=True)
        if figure.method == "sva" and target is not None:
            print("    " + target_mixes(model, video, target, numbers["perturbed_frames"]), flush=True)
        frames = frames_to_show(numbers["perturbed_frames"], video.shape[1], columns, figure.consecutive)
        print(f"    frames shown {frames}", flush=True)
        offset = sum(len(c) for c in cleans)  # the clips' frames are laid side by side in one grid
        cleans.append(video[0, frames])
        adversarials.append(adversarial[0, frames])
        shown += [offset + i for i in range(len(frames))]
        marks = set(numbers["perturbed_frames"])
        prefix = f"#{index} " if figure.clips > 1 else ""
        titles += [
            f"{prefix}t={t}{'*' if t in marks and len(marks) < video.shape[1] else ''}" for t in frames
        ]
        if figure.method == "flicker" and "offsets" in result.extras[0]:
            offsets = result.extras[0]["offsets"].reshape(video.shape[1], -1)
            print(
                "    RGB offsets per frame (% of range): "
                + "; ".join(",".join(f"{100 * v:+.1f}" for v in frame.tolist()) for frame in offsets),
                flush=True,
            )
            viz.flicker_curves(offsets, out / f"{name}-offsets.png",
                               title=f"{figure.paper}: RGB offsets, clip {index}")  # fmt: skip
        rows.append(numbers)
    fooled = sum(row["success"] for row in rows)
    viz.frame_grid(
        torch.cat(cleans), torch.cat(adversarials), out / f"{name}.png", frames=shown, column_titles=titles,
        title=f"{figure.paper}, {figure.model}: {fooled}/{len(rows)} fooled" + (" (* = perturbed frame)"
              if any(t.endswith("*") for t in titles) else ""),
    )  # fmt: skip
    print(f"  wrote {out / f'{name}.png'}", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figure", choices=[*FIGURES, "all"], default="all")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="the only place written to")
    parser.add_argument(
        "--seed", type=int, default=0, help="clip order, random targets and the attacks' seed"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny budgets (seconds): for the tests")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FIGURES if args.figure == "all" else [args.figure]:
        make_figure(name, args.out, seed=args.seed, tiny=args.tiny)
    return 0


if __name__ == "__main__":
    sys.exit(main())
