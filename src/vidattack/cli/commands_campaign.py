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
    workers: int | None = typer.Option(
        None,
        "--workers",
        "-w",
        min=1,
        help="Worker processes (local: default 1, run in this process; ray: default as many as the "
        "cluster holds, and a local Ray gets WORKERS x --ray-num-cpus CPUs).",
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
        None, "--batch-videos", min=1, help="Attack K videos at once in this process (with --backend ray: in each Ray "
        "worker), their queries merged into shared forward passes (a dynamic batcher; use it on a GPU). Rows "
        "are identical for every K."),
    forward_batch: int = typer.Option(
        32, "--forward-batch", min=1, help="Rows per merged forward pass with --batch-videos (32 on CPU; "
        "128-256 on a GPU)."),
    backend: str = typer.Option(
        "local",
        "--backend",
        help="Where items run: local (processes on this machine) or ray (needs the ray extra of vidattack).",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); default: start a local Ray.",
    ),
    ray_num_cpus: float = typer.Option(1.0, "--ray-num-cpus", min=0.01, help="CPUs per Ray worker."),
    ray_num_gpus: float = typer.Option(
        0.0, "--ray-num-gpus", min=0.0, help="GPUs per Ray worker (use with --device cuda)."
    ),
    ray_max_retries: int = typer.Option(
        2,
        "--ray-max-retries",
        min=0,
        help="Times the items of a Ray worker that died are handed out again before they are stored as errors.",
    ),
) -> None:
    """Run CONFIG into DB; re-running the same command resumes (finished items are skipped)."""
    from vidattack.campaign import load_config, run_campaign

    if backend not in ("local", "ray"):
        raise typer.BadParameter(f"must be local or ray, got {backend!r}", param_hint="--backend")
    if backend == "local" and (ray_address is not None or ray_num_gpus > 0):
        raise typer.BadParameter("needs --backend ray", param_hint="--ray-address / --ray-num-gpus")
    runner = None
    if backend == "ray":
        from vidattack.campaign.ray_backend import RayBackend

        runner = RayBackend(
            ray_address, num_cpus_per_task=ray_num_cpus, num_gpus_per_task=ray_num_gpus,
            max_retries=ray_max_retries, workers=workers, batch_videos=batch_videos, forward_batch=forward_batch,
        )  # fmt: skip
    parsed = load_config(config)
    summary = run_campaign(
        parsed,
        db,
        workers=workers or 1,
        device=device,
        save_videos=save_videos,
        retry_errors=retry_errors,
        progress=progress,
        backend=runner,
        batch_videos=batch_videos,
        forward_batch=forward_batch,
    )
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    if runner is not None and runner.deaths:
        typer.echo(f"note: {runner.deaths} Ray worker(s) died; their items were handed out again", err=True)
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
