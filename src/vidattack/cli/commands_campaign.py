"""``vidattack campaign ...``: run, resume, inspect and report campaigns of models x attacks x videos."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register", "campaign_app"]

campaign_app = typer.Typer(
    help=(
        "Campaigns: every model x attack x selected video, stored in SQLite, resumable, reported as "
        "tables and plots. Write a TOML config (see configs/pgd_demo.toml), then `campaign run`, "
        "`campaign status` and `campaign report`."
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``campaign`` command group to ``app``."""
    app.add_typer(campaign_app, name="campaign")


_DB = typer.Option(..., "--db", help="The campaign's SQLite database (created by `run`).")


@campaign_app.command("run")
def run(
    config: Path = typer.Argument(..., help="Campaign config (TOML)."),
    db: Path = _DB,
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Worker processes (1: run in this process)."
    ),
    device: str = typer.Option("cpu", "--device", help="Torch device for the models, e.g. cpu or cuda:0."),
    save_videos: bool = typer.Option(
        False,
        "--save-videos",
        help="Save adversarial videos losslessly in DB_STEM.videos/ next to the database.",
    ),
    retry_errors: bool = typer.Option(
        False, "--retry-errors", help="Run again the items that raised last time."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
    batch_videos: int | None = typer.Option(
        None, "--batch-videos", min=1, help="Attack K videos at once in this process, their queries merged into "
        "shared forward passes (a dynamic batcher; use it on a GPU). Rows are identical for every K."),
    forward_batch: int = typer.Option(
        32, "--forward-batch", min=1, help="Rows per merged forward pass with --batch-videos (32 on CPU; "
        "128-256 on a GPU)."),
) -> None:
    """Run CONFIG into DB; re-running the same command resumes (finished items are skipped)."""
    from vidattack.campaign import load_config, run_campaign

    parsed = load_config(config)
    summary = run_campaign(
        parsed,
        db,
        workers=workers,
        device=device,
        save_videos=save_videos,
        retry_errors=retry_errors,
        progress=progress,
        batch_videos=batch_videos,
        forward_batch=forward_batch,
    )
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"campaign {parsed.name}: {summary.planned} items, {summary.already_done} already done, "
        f"ran {summary.ran} "
        f"({summary.errors} errors) in {summary.seconds:.1f} s -> {db}"
    )


@campaign_app.command("status")
def status(
    db: Path = _DB,
    campaign: str | None = typer.Option(None, "--campaign", "-c", help="Only this campaign."),
) -> None:
    """Print items done / failed / pending per model x attack."""
    from vidattack.campaign import Store

    with Store(db, readonly=True) as store:
        rows = store.progress(campaign)
    if not rows:
        typer.echo(f"{db}: no planned items" + (f" for campaign {campaign!r}" if campaign else ""))
        return
    headers = ("campaign", "dataset", "model", "attack", "done", "failed", "pending", "planned")
    table = [headers] + [
        tuple(str(row[key] or 0) if key in headers[4:] else str(row[key]) for key in headers) for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for line in table:
        typer.echo(
            "  ".join(
                cell.rjust(w) if i >= 4 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    totals = {
        key: sum(int(row[key] or 0) for row in rows) for key in ("done", "failed", "pending", "planned")
    }
    typer.echo(
        f"total: {totals['done']} done, {totals['failed']} failed, {totals['pending']} pending "
        f"of {totals['planned']}"
    )


@campaign_app.command("report")
def report(
    db: Path = _DB,
    out: Path = typer.Option(
        ..., "--out", "-o", help="Directory for report.md, report.html, plots and rows.csv."
    ),
    campaign: str | None = typer.Option(None, "--campaign", "-c", help="Only this campaign."),
    examples: int = typer.Option(
        4, "--examples", min=0, help="Example frame grids (needs --save-videos runs)."
    ),
    csv: Path | None = typer.Option(None, "--csv", help="Also export every row to this CSV file."),
) -> None:
    """Write report.md and a self-contained report.html: tables, success-vs-queries plots, examples."""
    from vidattack.campaign import Store, write_csv, write_report

    written = write_report(db, out, campaign=campaign, examples=examples)
    if csv is not None:
        with Store(db, readonly=True) as store:
            write_csv(store.rows(campaign), csv)
        written["csv"] = csv
    for kind, path in written.items():
        typer.echo(f"wrote {kind}: {path}")


@campaign_app.command("export")
def export(
    db: Path = _DB,
    csv: Path = typer.Option(..., "--csv", help="CSV file to write (one line per item)."),
    campaign: str | None = typer.Option(None, "--campaign", "-c", help="Only this campaign."),
) -> None:
    """Export result rows to CSV."""
    from vidattack.campaign import Store, write_csv

    with Store(db, readonly=True) as store:
        rows = store.rows(campaign)
    write_csv(rows, csv)
    typer.echo(f"wrote {len(rows)} rows to {csv}")


@campaign_app.command("check")
def check(config: Path = typer.Argument(..., help="Campaign config (TOML).")) -> None:
    """Validate CONFIG (fields, attack methods and parameters, models, dataset root) without running it."""
    from vidattack.campaign import load_config

    parsed = load_config(config)
    typer.echo(
        f"{config}: campaign {parsed.name!r} (config {parsed.config_hash}): {len(parsed.models)} model(s) x "
        f"{len(parsed.attacks)} attack(s) on {parsed.data.name}, selection {parsed.selection.mode}"
        + (f" (limit {parsed.selection.limit})" if parsed.selection.limit else "")
    )
