"""``vidattack evaluate``: robust accuracy of a model under one threat model, worst case over a fixed suite."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""
    app.command("evaluate")(evaluate)


def evaluate(
    model: str = typer.Option(..., "--model", "-m", help="Zoo name, checkpoint path, or http://HOST:PORT of a model "
                              "service (scores / labels threats only)."),
    data: str = typer.Option(..., "--data", help="'synth' or 'scene' (the synthetic test beds) or a data-set folder (class "
                             "folders ROOT/SPLIT/CLASS/*.mp4, UCF-101, HMDB-51 or Kinetics with annotations/*.csv; labels "
                             "follow the model's class names where they match)."),
    threat: str = typer.Option(..., "--threat", help="white-box, scores or labels."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created): robustness.json, report.md/.html, "
                             "plots and the store; re-running into it resumes."),
    eps: float = typer.Option(0.05, "--eps", help="L-inf bound in [0, 1] units."),
    budget: int = typer.Option(10_000, "--budget", help="Queries per suite member per clip (black-box threats)."),
    n: int = typer.Option(100, "--n", help="Clips evaluated (a fixed permutation of the split, first N)."),
    split: str = typer.Option("test", "--split", help="Split of --data."),
    attacker_data: str | None = typer.Option(
        None, "--attacker-data", help="The attacker's own labelled videos for members that need them: a data-set "
        "folder (its training split), an .npz with 'videos' and 'labels', or 'synth'. Default: the synthetic "
        "test bed for zoo models only."),
    seed: int = typer.Option(0, "--seed", help="Seed of the evaluation (each clip's attacks derive theirs)."),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda:0."),
    all_members: bool = typer.Option(False, "--all-members", help="Run every member on every clip (no stop at the "
                                     "first success): each member's own robust accuracy is then reported."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Evaluate how robust a video classifier is: clean accuracy, robust accuracy (worst case over the
    threat's suite, a clip is robust only if every member fails within eps), at query budgets, after 8-bit
    rounding and H.264 re-encoding. Writes OUT/robustness.json (schema: robustness.schema.json) and
    OUT/report.md / report.html."""
    from vidattack.evaluation.robustness import evaluate as run_evaluation

    document = run_evaluation(
        model, data, threat, out=out, eps=eps, budget=budget, n=n, split=split, attacker_data=attacker_data,
        seed=seed, device=device, stop_at_first_success=not all_members, progress=progress,
    )  # fmt: skip
    typer.echo(summary(document))
    typer.echo(f"wrote {out / 'robustness.json'}, {out / 'report.md'}, {out / 'report.html'}")


def summary(document: dict) -> str:
    """A few lines for the terminal."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    lines = [
        f"{document['model']['name']} on {document['data']['name']} (n={document['n']}), threat {document['threat']}, "
        f"eps {document['eps']}" + ("" if document["budget"] is None else f", budget {document['budget']:,}")
        + f", suite {document['suite']['name']} v{document['suite']['version']}",
        f"  clean accuracy  {pct(document['clean_acc'])}",
        f"  robust accuracy {pct(document['robust_acc'])}  (8-bit {pct(document['robust_acc_uint8'])}, "
        f"H.264 {pct(document['robust_acc_h264'])})",
    ]
    if document["data"]["identity"].get("source") == "folder":
        lines.append(f"  labels: {document['data']['labels']}")
    for member in document["members"]:
        lines.append(f"  after {member['member']:<16} {pct(member['robust_acc_after'])}  (broke "
                     f"{member['broken_first']} of {member['attacked']} attacked)")  # fmt: skip
    for point in document["budgets"]:
        lines.append(f"  at {point['queries']:>7,} queries {pct(point['robust_acc'])}")
    if not document["complete"]:
        lines.append("  incomplete: some clips are being evaluated by another runner; re-run to finish")
    return "\n".join(lines)
