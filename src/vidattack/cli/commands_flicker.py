"""``vidattack flicker-universal``: class / universal / time-invariant flickering perturbations
(Pony et al. 2021); the experiments themselves are :mod:`vidattack.experiments.flicker_universal`.

The single-video attack is ``vidattack attack flicker``. This command trains one ``delta [T, 3]`` on
the training split (videos the model classifies correctly, Sec. 4.2), evaluates it on the test split and
writes ``delta.npz``, the light schedule ``schedule.csv`` / ``schedule.json``, the RGB plot
``flicker.png`` and ``summary.json`` into ``--out``. With ``--config FILE.toml`` it runs a grid of
such experiments (models x l-inf bounds x modes, random baselines, transfer: Tables 1-2) instead.
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``flicker-universal`` command to ``app``."""
    app.command("flicker-universal")(flicker_universal_command)


def flicker_universal_command(
    model: str | None = typer.Option(
        None, "--model", "-m", help="Zoo name (e.g. c3d-synth) or checkpoint path."
    ),
    mode: str = typer.Option(
        "universal", "--mode", help="class | universal | time-invariant (Sec. 4.4-4.5)."
    ),
    class_index: int | None = typer.Option(
        None, "--class", help="Class for --mode class (default: every class, reported as mean +- std)."
    ),
    linf: float = typer.Option(
        0.2, "--linf", help="L-inf bound on delta as a share of the range (0.2 = 20%); 0 = none."
    ),
    epochs: int = typer.Option(10, "--epochs", help="Passes over the training videos."),
    batch_size: int = typer.Option(8, "--batch-size", help="Videos per Adam step (Appendix B: 8)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate (Appendix B: 1e-3)."),
    lam: float = typer.Option(1.0, "--lam", help="lambda of Eq. 1 (weight of the regularisers)."),
    beta1: float = typer.Option(0.5, "--beta1", help="Weight of the thickness regulariser D1."),
    beta2: float = typer.Option(0.5, "--beta2", help="Weight of the roughness regulariser D2."),
    margin: float = typer.Option(0.05, "--margin", help="Margin m of the loss (probability)."),
    target: int | None = typer.Option(
        None, "--target", help="Target class (class-targeted universal attack)."
    ),
    train_size: int = typer.Option(500, "--train-size", help="Correctly classified training videos used."),
    test_size: int = typer.Option(200, "--test-size", help="Correctly classified test videos evaluated."),
    data: str | None = typer.Option(
        None, "--data", help="Videos to train (train split) and evaluate (test split) on: a data-set folder (UCF-101, "
        "HMDB-51, Kinetics or ROOT/SPLIT/CLASS class folders), an .npz with train_/test_ videos and labels, or "
        "'synth' / 'scene'. Default: the test bed, for zoo models only."
    ),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="Evaluate the random baselines (Sec. 5.2)."
    ),
    repeats: int = typer.Option(10, "--repeats", help="Draws per random baseline."),
    transfer: list[str] = typer.Option(
        [], "--transfer", help="Also evaluate the delta on this model (repeatable)."
    ),
    over_the_air: bool = typer.Option(
        False, "--over-the-air", help="Evaluate after the simulated light channel."
    ),
    eot: bool = typer.Option(False, "--eot", help="Train through random draws of the simulated channel."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate of the exported light schedule."),
    seed: int = typer.Option(0, "--seed", help="Seed of batch order, shifts and baselines."),
    device: str = typer.Option("cpu", "--device", help="Torch device."),
    config: Path | None = typer.Option(
        None, "--config", help="Run a grid from a flicker TOML (configs/flicker_*.toml)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output directory (delta.npz, schedule.csv/json, flicker.png, summary.json)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train a class / universal / time-invariant flicker delta; report fooling, thickness, roughness."""
    from vidattack.evaluation.artifacts import prepare_output_dir
    from vidattack.experiments.clips import data_for
    from vidattack.experiments.flicker_universal import run_config, run_experiment, summary_text
    from vidattack.io import json_text

    if config is None and model is not None:  # no data for a foreign model: refused before --out is made
        data = data_for(model, data)
    prepare_output_dir(out, "--out")

    log = (lambda text: typer.echo(text, err=True)) if not as_json else None
    if config is not None:
        report = run_config(config, out, device=device, log=log)
        typer.echo(json_text(report) if as_json else (out / "results.md").read_text())
        return
    if model is None:
        raise ValueError("--model is required (or --config)")
    summary = run_experiment(
        model=model,
        mode=mode,
        out=out,
        class_index=class_index,
        linf=linf,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lam=lam,
        beta1=beta1,
        beta2=beta2,
        margin=margin,
        target=target,
        train_size=train_size,
        test_size=test_size,
        data=data,
        baselines=baselines,
        repeats=repeats,
        transfer=list(transfer),
        over_the_air=over_the_air,
        eot=eot,
        fps=fps,
        seed=seed,
        device=device,
        log=log,
    )
    if as_json:
        typer.echo(json_text({k: v for k, v in summary.items() if k != "history"}))
        return
    typer.echo(summary_text(summary))
