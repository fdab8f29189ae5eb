"""``vidattack sparse-universal``: a universal sparse perturbation (Wei et al. 2019, Eq. 2; Table 4).

The single-video attack is ``vidattack attack sparse`` (and ``sparse-prop`` for the propagation-based
variant); this command learns one perturbation on synthetic training clips and evaluates it on held-out
test clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``sparse-universal`` command to ``app``."""
    app.command("sparse-universal")(sparse_universal_command)


def _correct_clips(net, split: str, count: int, frames: int, size: int, device: str):  # type: ignore[no-untyped-def]
    """The first ``count`` clips of a synthetic ``split`` that ``net`` classifies correctly, with indices."""
    import torch

    from vidattack.data.synthetic import SynthConfig, generate

    config = SynthConfig(frames=frames, size=size)
    kept_videos, kept_labels, kept_indices = [], [], []
    start, chunk = 0, max(32, count)
    while sum(len(v) for v in kept_videos) < count and start < 20 * count + 200:
        clips = generate(split, config, indices=range(start, start + chunk))
        videos = clips.videos.to(device)
        with torch.no_grad():
            preds = net(videos).argmax(1).cpu()
        keep = preds == clips.labels
        kept_videos.append(videos[keep.to(device)])
        kept_labels.append(clips.labels[keep])
        kept_indices.extend(i for i, ok in zip(clips.indices, keep.tolist(), strict=True) if ok)
        start += chunk
    videos, labels = torch.cat(kept_videos)[:count], torch.cat(kept_labels)[:count]
    return videos, labels, kept_indices[:count]


def sparse_universal_command(
    model: str = typer.Option(..., "--model", "-m", help="Zoo name (e.g. lrcn-synth) or checkpoint path."),
    mask: str = typer.Option(
        "all", "--mask", help="Temporal mask: all | first:K | last:K | random:K | frames:1,5,9."
    ),
    norm: str = typer.Option("l21", "--norm", help="Regulariser: l21 (the paper's) or l2."),
    lam: float | None = typer.Option(
        None, "--lam", help="Regulariser weight (default: the attack's tuned value)."
    ),
    epochs: int = typer.Option(40, "--epochs", help="Passes over the training clips."),
    batch_size: int = typer.Option(16, "--batch-size", help="Training clips per Adam step."),
    lr: float = typer.Option(0.01, "--lr", help="Adam learning rate ([0,1] units)."),
    eps: float | None = typer.Option(
        None, "--eps", help="Optional L-inf bound on the perturbation (not in the paper)."
    ),
    target: int | None = typer.Option(
        None, "--target", "-t", help="Target class (Eq. 4); omit for untargeted."
    ),
    train: int = typer.Option(100, "--train", help="Correctly classified synthetic train clips to learn on."),
    test: int = typer.Option(100, "--test", help="Correctly classified synthetic test clips to evaluate on."),
    frames: int | None = typer.Option(None, "--frames", help="Clip length (default: the model's)."),
    seed: int = typer.Option(0, "--seed", help="Seed (mini-batch order, random masks)."),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda:0."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for universal.npz, result.json and plots."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a summary."),
) -> None:
    """Learn ONE sparse perturbation for many training clips and measure its fooling ratio on held-out clips.

    Only clips the model classifies correctly are used, so the fooling ratio counts predictions the
    perturbation changed. Writes universal.npz (`perturbation` [T,C,H,W], `frame_mask`), result.json,
    profile.png (per-frame MAP and the per-frame labels of the first test clip, clean>adversarial, for
    models with per-frame logits) and grid.png (that clip, clean / adversarial / perturbation).
    """
    import torch

    from vidattack import io, models, viz
    from vidattack.artifacts import safe_child
    from vidattack.attacks.sparse_l21 import DEFAULT_LAMBDA
    from vidattack.attacks.sparse_universal import apply_universal, plot_propagation, sparse_universal
    from vidattack.threat import WhiteBox

    if train < 1 or test < 0:
        raise ValueError(f"--train must be >= 1 and --test >= 0, got {train} and {test}")
    net = models.load(model, device=device)
    length = frames or getattr(net, "num_frames", None) or 16
    size = (getattr(net, "input_size", None) or (32, 32))[0]
    train_videos, train_labels, train_indices = _correct_clips(net, "train", train, length, size, device)
    test_videos, test_labels, test_indices = (
        _correct_clips(net, "test", test, length, size, device) if test else (None, None, [])
    )
    if len(train_labels) == 0:
        raise ValueError(f"model {model} classifies none of the first synthetic train clips correctly")
    generator = torch.Generator().manual_seed(seed)
    whitebox = WhiteBox(net)
    result = sparse_universal(
        whitebox, train_videos, train_labels, target=target, eps=eps,
        lam=DEFAULT_LAMBDA if lam is None else lam, norm=norm, mask=mask, epochs=epochs,
        batch_size=batch_size, lr=lr, test_videos=test_videos if test else None,
        test_label=test_labels if test else None, generator=generator,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "model": model,
        "frames": length,
        "seed": seed,
        "target": target,
        "train_indices": train_indices,
        "test_indices": test_indices,
        **result.summary(),
        "history": result.history,
    }
    io.save_npz(
        safe_child(out, "universal.npz"), perturbation=result.perturbation, frame_mask=result.frame_mask
    )
    files = {"perturbation": str(out / "universal.npz")}
    shown = (test_videos if test_videos is not None and len(test_videos) else train_videos)[:1]
    adversarial = apply_universal(result.perturbation, shown)
    viz.frame_grid(
        shown[0].cpu(), adversarial[0].cpu(), safe_child(out, "grid.png"), title="universal perturbation"
    )
    files["grid"] = str(out / "grid.png")
    if getattr(net, "has_frame_logits", callable(getattr(net, "frame_logits", None))):
        plot_propagation(
            whitebox,
            shown,
            adversarial,
            safe_child(out, "profile.png"),
            title=f"{model}: universal {norm}, mask {mask} (labels clean>adv)",
        )
        files["profile"] = str(out / "profile.png")
    record["files"] = files
    safe_child(out, "result.json").write_text(json.dumps(record, indent=2, default=str))
    if as_json:
        typer.echo(json.dumps(record, default=str))
        return
    test_text = "n/a" if record["test_fooling"] is None else f"{record['test_fooling']:.1%}"
    typer.echo(
        f"universal {norm} perturbation on {model} (mask {mask}, "
        f"{record['perturbed_frames']}/{length} frames): train fooling {result.train_fooling:.1%} "
        f"(n={record['n_train']}), test fooling {test_text} (n={record['n_test']}), "
        f"MAP {result.map_255:.3f}, {norm} norm {result.reg:.3f}, {result.seconds:.1f} s"
    )
    for kind, path in files.items():
        typer.echo(f"  wrote {kind}: {path}")
