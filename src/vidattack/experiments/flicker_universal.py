"""Class / universal / time-invariant flickering perturbations (Pony et al. 2021, Sec. 4.4-4.5, 5.2-5.3,
6): one ``delta [T, 3]`` trained on the training split (videos the model classifies correctly, Sec.
4.2), evaluated on the test split, written with its light schedule and plots; and grids of such
experiments from a TOML file (models x l-inf bounds x modes, random baselines, transfer: Tables 1-2).
The command is ``vidattack flicker-universal``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vidattack import io
from vidattack.experiments.clips import correct_clips, data_for

__all__ = ["run_experiment", "run_config", "summary_text", "MODES"]

MODES = ("class", "universal", "time-invariant")


def run_experiment(
    *,
    model: str,
    mode: str,
    out: Path,
    class_index: int | None = None,
    linf: float | None = 0.2,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-3,
    lam: float = 1.0,
    beta1: float = 0.5,
    beta2: float = 0.5,
    margin: float = 0.05,
    target: int | None = None,
    train_size: int = 500,
    test_size: int = 200,
    data: str | None = None,
    baselines: bool = True,
    repeats: int = 10,
    transfer: list[str] | None = None,
    over_the_air: bool = False,
    eot: bool = False,
    draws: int = 4,
    fps: float = 25.0,
    seed: int = 0,
    device: str = "cpu",
    log: Any = None,
) -> dict[str, Any]:
    """Train and evaluate one generalised flicker delta, write its files into ``out``, return a summary."""
    import torch

    from vidattack import io, models, physical, viz
    from vidattack.attacks import flicker_universal as U

    if mode not in MODES:
        raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if linf is not None and linf <= 0:
        linf = None
    echo = log or (lambda text: None)
    generator = torch.Generator().manual_seed(seed)
    data = data_for(model, data)
    net = models.load(model, device=device)
    train_v, train_l, _ = correct_clips(data, "train", train_size, net, device)
    test_v, test_l, _ = correct_clips(data, "test", test_size, net, device)
    echo(f"{model}: {len(train_l)} training and {len(test_l)} test videos (correctly classified)")
    channel = physical.ChannelRanges() if eot else None
    settings = dict(
        eps=linf,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lam=lam,
        beta1=beta1,
        beta2=beta2,
        margin=margin,
        target=target,
        channel=channel,
    )
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "model": model,
        "mode": mode,
        "linf": linf,
        "seed": seed,
        "train_videos": len(train_l),
        "test_videos": len(test_l),
        "settings": {k: v for k, v in settings.items() if k != "channel"},
        "eot": eot,
    }

    def progress(row: dict[str, float]) -> None:
        echo(
            "  epoch {epoch}: loss {loss:.4f} train fooling {train_fooling:.1f}% "
            "thickness {thickness:.2f}% roughness {roughness:.2f}%".format(**row)
        )

    if mode == "class" and class_index is None:
        result = U.train_class_flickers(
            net, train_v, train_l, test_v, test_l, generator=generator, progress=progress, **settings
        )
        per_class = result.pop("per_class")
        io.save_npz(out / "delta.npz", **{f"class_{c}": row["offsets"] for c, row in per_class.items()})
        summary.update(result)
        summary["per_class"] = {
            str(c): {k: v for k, v in row.items() if k != "offsets"} for c, row in per_class.items()
        }
        for c, row in per_class.items():
            physical.export_schedule(row["offsets"], out, fps=fps, stem=f"schedule_class{c}")
        summary["files"] = {"delta": str(out / "delta.npz")}
        (out / "summary.json").write_text(io.json_text(summary, indent=2))
        return summary

    if mode == "class":
        train_mask, test_mask = train_l == class_index, test_l == class_index
        if not bool(train_mask.any()) or not bool(test_mask.any()):
            raise ValueError(
                f"--class {class_index}: no correctly classified videos of that class in the splits"
            )
        train_v, train_l, test_v, test_l = (
            train_v[train_mask],
            train_l[train_mask],
            test_v[test_mask],
            test_l[test_mask],
        )
        summary["class"] = class_index
    trained = U.train_universal_flicker(
        net,
        train_v,
        train_l,
        time_invariant=(mode == "time-invariant"),
        mode=mode,
        generator=generator,
        progress=progress,
        **settings,
    )
    delta = trained.offsets
    scores = U.evaluate_flicker(net, delta, test_v, test_l, target=target)
    shifted = U.evaluate_flicker(net, delta, test_v, test_l, target=target, all_shifts=True)
    summary.update(
        fooling_ratio=scores["fooling_ratio"],
        thickness=scores["thickness"],
        roughness=scores["roughness"],
        linf_measured=scores["linf"],
        fooling_ratio_all_shifts=shifted["fooling_ratio"],
        worst_shift_fooling_ratio=shifted["worst_shift_fooling_ratio"],
        per_shift_fooling_ratio=shifted["per_shift_fooling_ratio"],
        train_seconds=trained.seconds,
        steps=trained.steps,
        history=trained.history,
    )
    if baselines:
        summary["baselines"] = {
            kind: {"mean": row["mean"], "std": row["std"]}
            for kind, row in U.baseline_fooling(
                net, delta, test_v, test_l, repeats=repeats, generator=generator
            ).items()
        }
    if transfer:
        summary["transfer"] = {}
        for other in transfer:
            other_net = models.load(other, device=device)
            other_v, other_l, _ = correct_clips(data, "test", test_size, other_net, device)
            summary["transfer"][other] = (
                U.fooling_ratio(other_net, delta, other_v, other_l)["fooling_ratio"] * 100
            )
    if over_the_air or eot:
        summary["over_the_air"] = physical.over_the_air_fooling(
            net,
            delta,
            test_v,
            test_l,
            physical.ChannelRanges(),
            draws=draws,
            target=target,
            generator=generator,
        )
    io.save_npz(out / "delta.npz", offsets=delta)
    files = physical.export_schedule(delta, out, fps=fps)
    viz.flicker_curves(delta, out / "flicker.png", title=f"{mode} flicker on {model}")
    summary["files"] = {"delta": str(out / "delta.npz"), **files, "plot": str(out / "flicker.png")}
    (out / "summary.json").write_text(io.json_text(summary, indent=2))
    return summary


def summary_text(summary: dict[str, Any]) -> str:
    lines = [f"{summary['mode']} flicker on {summary['model']} (l_inf {summary['linf']}):"]
    if "fooling_ratio_mean" in summary:
        lines.append(
            f"  per-class deltas: fooling ratio {summary['fooling_ratio_mean']:.1f} "
            f"+- {summary['fooling_ratio_std']:.1f}%  "
            f"thickness {summary['thickness_mean']:.2f} +- {summary['thickness_std']:.2f}%  "
            f"roughness {summary['roughness_mean']:.2f} +- {summary['roughness_std']:.2f}%"
        )
        return "\n".join(lines)
    lines.append(
        f"  fooling ratio {summary['fooling_ratio']:.1f}% on {summary['test_videos']} test videos  "
        f"thickness {summary['thickness']:.2f}%  roughness {summary['roughness']:.2f}%"
    )
    lines.append(
        f"  over all {len(summary['per_shift_fooling_ratio'])} cyclic shifts: "
        f"{summary['fooling_ratio_all_shifts']:.1f}% "
        f"(worst shift {summary['worst_shift_fooling_ratio']:.1f}%)"
    )
    for kind, row in summary.get("baselines", {}).items():
        lines.append(f"  random {kind}: {row['mean']:.1f} +- {row['std']:.1f}%")
    for other, ratio in summary.get("transfer", {}).items():
        lines.append(f"  transferred to {other}: {ratio:.1f}%")
    if "over_the_air" in summary:
        ota = summary["over_the_air"]
        lines.append(
            f"  over the air (simulated): {ota['fooling_ratio']:.1f}% (clean error {ota['clean_error']:.1f}%)"
        )
    for kind, path in summary.get("files", {}).items():
        lines.append(f"  wrote {kind}: {path}")
    return "\n".join(lines)


def run_config(path: Path, out: Path, *, device: str = "cpu", log: Any = None) -> dict[str, Any]:
    """Run the grid of a ``kind = "flicker-universal"`` TOML file (see ``configs/flicker_*.toml``).

    Every (mode, l-inf, model) cell becomes one :func:`run_experiment` in ``out/MODE-linfXX-MODEL``;
    with ``transfer = true`` each model's delta is also evaluated on the other models. A combined
    ``results.json`` and ``results.md`` are written into ``out``.
    """
    from vidattack.io import load_toml

    document = load_toml(path)
    if document.get("kind") != "flicker-universal":
        raise ValueError(
            f"{path}: kind must be 'flicker-universal' (campaign configs run with `vidattack campaign run`)"
        )
    known = {"kind", "name", "models", "modes", "linf", "transfer", "train"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    model_names = list(document["models"])
    modes = list(document.get("modes", ["universal"]))
    bounds = [None if float(b) <= 0 else float(b) for b in document.get("linf", [0.2])]
    options = dict(document.get("train", {}))
    results: list[dict[str, Any]] = []
    for mode in modes:
        for bound in bounds:
            for name in model_names:
                others = [m for m in model_names if m != name] if document.get("transfer", False) else None
                cell = out / f"{mode}-linf{'none' if bound is None else round(bound * 100)}-{name}"
                if log:
                    log(f"== {mode}, l_inf {bound}, {name} -> {cell}")
                summary = run_experiment(
                    model=name,
                    mode=mode,
                    out=cell,
                    linf=bound,
                    transfer=others,
                    device=device,
                    log=log,
                    **options,
                )
                results.append({k: v for k, v in summary.items() if k not in ("history", "per_class")})
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(io.json_text(results, indent=2))
    (out / "results.md").write_text(_markdown(results))
    return {"results": results}


def _fmt(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| mode | l_inf | model | fooling % | all shifts % | thickness % | roughness % "
        "| uniform % | minmax % | shuffle % | transfer % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        base = row.get("baselines", {})
        transfer = ", ".join(f"{k}: {v:.1f}" for k, v in row.get("transfer", {}).items()) or "-"
        fooling = row.get("fooling_ratio", row.get("fooling_ratio_mean"))
        thickness = row.get("thickness", row.get("thickness_mean"))
        roughness = row.get("roughness", row.get("roughness_mean"))
        cells = [
            row["mode"],
            "none" if row["linf"] is None else f"{row['linf'] * 100:.0f}%",
            row["model"],
            _fmt(fooling),
            _fmt(row.get("fooling_ratio_all_shifts")),
            _fmt(thickness),
            _fmt(roughness),
        ]
        for kind in ("uniform", "minmax", "shuffle"):
            cells.append(f"{base[kind]['mean']:.1f} +- {base[kind]['std']:.1f}" if kind in base else "-")
        cells.append(transfer)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
