"""``vidattack sparse-universal``: a universal sparse perturbation (Wei et al. 2019, Eq. 2; Table 4).

The single-video attack is ``vidattack attack sparse`` (and ``sparse-prop`` for the propagation-based
variant); this command learns one perturbation on synthetic training clips and evaluates it on held-out
test clips.
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``sparse-universal`` command to ``app``."""
    app.command("sparse-universal")(sparse_universal_command)


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
    lr_end: float = typer.Option(
        1.0, "--lr-end", help="Final learning rate as a share of --lr, reached linearly (1 = constant; "
        "0.05 lets frames pulled to zero settle there instead of oscillating by about --lr)."
    ),
    eps: float | None = typer.Option(
        None, "--eps", help="Optional L-inf bound on the perturbation (not in the paper)."
    ),
    target: int | None = typer.Option(
        None, "--target", "-t", help="Target class (Eq. 4); omit for untargeted."
    ),
    data: str | None = typer.Option(
        None, "--data", help="Videos to learn on (train split) and evaluate on (test split): a data-set folder "
        "(UCF-101, HMDB-51, Kinetics or ROOT/SPLIT/CLASS class folders), an .npz with train_/test_ videos and "
        "labels, or 'synth' / 'scene'. Default: the test bed, for zoo models only."
    ),
    train: int = typer.Option(100, "--train", help="Correctly classified train clips to learn on."),
    test: int = typer.Option(100, "--test", help="Correctly classified test clips to evaluate on."),
    frames: int | None = typer.Option(None, "--frames", help="Clip length (default: the model's)."),
    seed: int = typer.Option(0, "--seed", help="Seed (mini-batch order, random masks)."),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda:0."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for universal.npz, result.json and plots."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a summary."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar of the epochs on "
        "stderr, with the training fooling ratio."),
) -> None:
    """Learn ONE sparse perturbation for many training clips and measure its fooling ratio on held-out clips.

    Only clips the model classifies correctly are used, so the fooling ratio counts predictions the
    perturbation changed. Writes universal.npz (`perturbation` [T,C,H,W], `frame_mask`), result.json,
    profile.png (per-frame MAP and the per-frame labels of the first test clip, clean>adversarial, for
    models with per-frame logits) and grid.png (that clip, clean / adversarial / perturbation).
    """
    from tqdm.auto import tqdm

    from vidattack.evaluation.artifacts import prepare_output_dir
    from vidattack.experiments.clips import data_for
    from vidattack.experiments.sparse_universal import run_sparse_universal
    from vidattack.io import json_text

    data = data_for(model, data)  # no data for a foreign model: refused before --out is made
    prepare_output_dir(out, "--out")

    with tqdm(total=epochs, desc="sparse-universal", unit="epoch", disable=not progress, leave=False,
              dynamic_ncols=True, delay=1.0) as bar:

        def epoch_done(_epoch: int, objective: float, fooling: float) -> None:
            bar.set_postfix(objective=f"{objective:.4f}", train_fooling=f"{fooling:.1%}", refresh=False)
            bar.update()

        record = run_sparse_universal(
            model=model, mask=mask, norm=norm, lam=lam, epochs=epochs, batch_size=batch_size, lr=lr,
            lr_end=lr_end, eps=eps, target=target, train=train, test=test, frames=frames, seed=seed, device=device,
            out=out, progress=epoch_done, data=data,
        )  # fmt: skip
    files, length = record["files"], record["frames"]
    if as_json:
        typer.echo(json_text(record))
        return
    test_text = "n/a" if record["test_fooling"] is None else f"{record['test_fooling']:.1%}"
    typer.echo(
        f"universal {norm} perturbation on {model} (mask {mask}, "
        f"{record['perturbed_frames']}/{length} frames): train fooling {record['train_fooling']:.1%} "
        f"(n={record['n_train']}), test fooling {test_text} (n={record['n_test']}), "
        f"MAP {record['map_255']:.3f}, {norm} norm {record['reg']:.3f}, {record['seconds']:.1f} s"
    )
    for kind, path in files.items():
        typer.echo(f"  wrote {kind}: {path}")
