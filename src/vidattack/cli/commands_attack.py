"""``vidattack attack`` and ``vidattack attacks``: run one attack on one video; list the methods."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``attack`` and ``attacks`` commands to ``app``."""
    app.command("attack")(attack)
    app.command("attacks")(list_attacks)


def attack(
    method: str = typer.Argument(..., help="Attack method (see `vidattack attacks`), e.g. pgd, vbad, heuristic."),
    model: str = typer.Option(..., "--model", "-m", help="Zoo name (see `vidattack models`), checkpoint path, or http://HOST:PORT of a model service "
        "(`vidattack serve`; black-box methods only)."),
    video: str = typer.Option(
        ..., "--video", "-v", help="Video file (mp4/avi/mkv/webm), .npz tensor, or synth:SPLIT:INDEX (scene:SPLIT:INDEX for the scene test bed)."
    ),
    label: int | None = typer.Option(
        None, "--label", "-l", help="True class; default: the label that comes with the video (an .npz's or a test-bed clip's; a file in a "
        "folder named after one of the model's classes: that class), else the model's prediction."
    ),
    target: int | None = typer.Option(None, "--target", "-t", help="Target class (targeted attack); omit for untargeted."),
    eps: float | None = typer.Option(None, "--eps", help="Perturbation bound (L-inf, [0,1] units); default: the method's."),
    max_queries: int | None = typer.Option(None, "--max-queries", "-q", help="Query budget for black-box methods."),
    seed: int = typer.Option(0, "--seed", help="Seed of the attack's random generator."),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda:0."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="Attack parameter KEY=VALUE (repeatable); see `vidattack attacks METHOD`."
    ),
    attacker_data: str | None = typer.Option(
        None, "--attacker-data", help="The attacker's own labelled videos, for methods that need them (targeted "
        "V-BAD's start videos, Opt-attack/Heuristic initial directions, SVA target clips, SVAL training): a "
        "data-set folder (its training split), an .npz with 'videos' and 'labels', or 'synth' / 'scene'. Default: the "
        "synthetic test bed for zoo models only; other models must be given one."),
    attacker_split: str = typer.Option("train", "--attacker-split", help="Split of --attacker-data to use."),
    arch: str | None = typer.Option(
        None, "--arch", help="Architecture of a foreign weight file (.pt/.pth/bare .safetensors), e.g. r2plus1d_18, r3d_18, "
        "mc3_18, s3d, mvit_v2_s, swin3d_t, c3d, i3d, lrcn."),
    arch_param: list[str] = typer.Option(
        [], "--arch-param", help="Architecture argument for --arch, KEY=VALUE (repeatable), e.g. num_classes=400."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory for result.json, the adversarial video (lossless + preview) and plots."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a summary."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr: the clips "
        "the attack runs through the model (a black-box method's queries, out of --max-queries)."),
    max_frames: int = typer.Option(10_000, "--max-frames", min=1, help="Refuse a video with more frames (frames are "
        "sampled while the file is read)."),
    max_pixels: int = typer.Option(4096 * 4096, "--max-pixels", min=1, help="Refuse frames with more pixels "
        "(height x width)."),
) -> None:
    """Attack one video with METHOD and report success, queries and perturbation metrics.

    An untargeted attack on a video the model already gets wrong is reported as `clean-misclassified`
    and not run. `success_uint8` tells whether the result stays adversarial once rounded to 8-bit frames,
    `success_h264` whether it survives H.264 re-encoding (as on a video platform).
    """
    from contextlib import nullcontext

    import torch
    from tqdm.auto import tqdm

    from vidattack import methods, models
    from vidattack.cli.commands_models import parse_key_values
    from vidattack.cli.stopping import first_interrupt_stops
    from vidattack.data.layouts import class_of_path
    from vidattack.data.references import load_video_any
    from vidattack.evaluation.artifacts import prepare_output_dir, write_attack_outputs
    from vidattack.io import json_text
    from vidattack.methods.model_refs import is_zoo_model
    from vidattack.methods.record import attack_video
    from vidattack.threat import graceful_stop

    if out is not None:  # before any work: a bad --out must not fail after the attack
        prepare_output_dir(out, "--out")

    spec = methods.get(method)
    params = dict(methods.parse_param(method, text) for text in param)
    arch_kwargs = parse_key_values(arch_param, "--arch-param")
    net = models.load(model, device=device, **({"arch": arch, "arch_kwargs": arch_kwargs} if arch else {}))
    if attacker_data is not None:  # a folder's labels follow the model's class names
        attacker = methods.open_attacker_data(
            attacker_data, split=attacker_split, model_classes=getattr(net, "class_names", None)
        )
    elif is_zoo_model(model):
        attacker = methods.SyntheticAttackerData.for_model(model, attacker_split)  # the bed it was trained on
    else:
        attacker = None
    frames, size = getattr(net, "num_frames", None), getattr(net, "input_size", None)
    clip, ref_label = load_video_any(video, frames=frames, size=size, max_frames=max_frames, max_pixels=max_pixels)
    clip = clip.unsqueeze(0).to(device)
    label_source = "argument" if label is not None else "video" if ref_label is not None else "prediction"
    if label is None:
        label = ref_label
    if label is None and Path(video).is_file():  # a data set's file: its class folder names the label
        label = class_of_path(video, getattr(net, "class_names", None))
        label_source = "folder" if label is not None else label_source
    if label is None:
        with torch.no_grad():
            label = int(net(clip).argmax(1)[0])
    black_box = spec.threat != "white-box"
    # a black-box attack stopped by Ctrl-C ends as at the end of its budget and keeps what it found
    with graceful_stop() as stop, first_interrupt_stops(stop) if black_box else nullcontext(), \
            tqdm(total=max_queries if black_box else None, desc=spec.name, unit="query" if black_box else "clip",
                 disable=not progress, leave=False, dynamic_ncols=True, delay=1.0) as bar:  # fmt: skip
        result, record = attack_video(
            spec.name, net, clip, int(label), target=target, eps=eps, budget=max_queries, seed=seed, params=params,
            attacker_data=attacker, on_clips=bar.update,
        )  # fmt: skip
    record = {"model": model, "video": video, "label_source": label_source, **record, "interrupted": stop.is_set()}
    if out is not None:
        record["files"] = write_attack_outputs(out, clip.cpu(), result, record)
    if as_json:
        typer.echo(json_text(record))
        return
    typer.echo(_summary(record))


def _summary(record: dict) -> str:
    lines = [
        f"{record['method']} on {record['video']} ({record['model']}): {record['status']}",
        f"  label {record['label']} ({record['label_source']}), clean prediction {record['clean_pred']}, "
        f"adversarial prediction {record['adv_label']}" + (f", target {record['target']}" if record["target"] is not None else ""),
        f"  queries {record['queries']}, iterations {record['iterations']}, {record['seconds']:.2f} s",
    ]
    if "linf" in record:
        lines.append(
            f"  linf {record['linf']:.4f}  l2 {record['l2']:.3f}  MAP {record['map']:.3f}  MAP* {record['map_star']:.3f}  "
            f"frame sparsity {record['frame_sparsity']:.2f}  pixel sparsity {record['pixel_sparsity']:.2f}  "
            f"thickness {record['thickness']:.2f}%  roughness {record['roughness']:.2f}%"
        )
        lines.append(
            f"  still adversarial after 8-bit rounding: {record['success_uint8']}, after H.264 (crf 23): "
            f"{record['success_h264']} (clean video after H.264: class {record['clean_h264_pred']})"
        )
    extras = record.get("extras") or {}
    if record.get("interrupted"):
        lines.append(f"  interrupted (Ctrl-C) after {record['queries']} queries: the result is the best found by then")
    elif record.get("status") == "failure" and extras.get("stop_reason"):
        lines.append(f"  stopped without success: {extras['stop_reason']}")
    if extras.get("method_notes"):
        lines.append(f"  note: {extras['method_notes']}")
    for kind, path in record.get("files", {}).items():
        lines.append(f"  wrote {kind}: {path}")
    return "\n".join(lines)


def list_attacks(
    method: str | None = typer.Argument(None, help="Show the parameters of this method."),
) -> None:
    """List attack methods, or one method's parameters (for `--param KEY=VALUE`) with types and defaults."""
    import inspect

    from vidattack import methods
    from vidattack.methods.params import describe, is_settable

    if method is None:
        for name in methods.names():
            spec = methods.get(name)
            typer.echo(f"{name:<16} {spec.threat:<10} {spec.kind:<10} {spec.summary}")
        return
    spec = methods.get(method)
    typer.echo(f"{method} ({spec.threat}, {spec.kind}): {spec.summary}")
    if spec.kind == "minimising":
        typer.echo("  minimising: no eps bound; its stopping target is a parameter (map_target)")
    if spec.preset.values:
        typer.echo(f"  preset ({spec.preset.note}): " + ", ".join(f"{k}={v}" for k, v in spec.preset.values.items()))
    for key, parameter in methods.parameters(method).items():
        default = "" if parameter.default is inspect.Parameter.empty else f" = {parameter.default!r}"
        where = "" if is_settable(parameter.annotation) else "  (Python only)"
        help_text = f"  {parameter.help}" if parameter.help else ""
        typer.echo(f"  --param {key}{default}  [{describe(parameter.annotation)}]{where}{help_text}")
    doc = inspect.getdoc(spec.core) or ""
    if doc:
        typer.echo("\n" + doc)
