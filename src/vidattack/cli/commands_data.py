"""``vidattack data``: write the synthetic test bed as real video files in a data-set layout."""

from __future__ import annotations

from pathlib import Path

import typer

LAYOUT_HELP = (
    "ucf101 (Class/v_Class_gGG_cCC.avi + ucfTrainTestlist/), hmdb51 (class/NAME.avi + "
    "testTrainMulti_7030_splits/) or kinetics (SPLIT/label/YTID_START_END.mp4 + annotations/*.csv)."
)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    data_app = typer.Typer(
        help=(
            "Data sets: write the synthetic motion test bed as video files in UCF-101, HMDB-51 or "
            "Kinetics layout."
        ),
        no_args_is_help=True,
    )

    @data_app.command("write-synth")
    def write_synth(
        out: Path = typer.Option(
            ..., "--out", help="Output directory (created if missing); nothing is written outside it."
        ),
        layout: str = typer.Option("ucf101", "--layout", help=LAYOUT_HELP),
        frames: int = typer.Option(16, "--frames", min=2, help="Frames per clip."),
        size: int = typer.Option(32, "--size", min=8, help="Frame height and width in pixels."),
        seed: int = typer.Option(0, "--seed", min=0, help="Test-bed seed (same seed, same clips)."),
        limit: int | None = typer.Option(None, "--limit", min=0, help="Write at most N clips per split."),
        split: list[str] | None = typer.Option(
            None, "--split", help="Split to write (repeatable): train, val, test. Default: train and test."
        ),
        codec: str = typer.Option(
            "ffv1",
            "--codec",
            help="ffv1 (lossless: reads back exactly the generated clips) or h264 (lossy, small).",
        ),
        n_train: int = typer.Option(3000, "--n-train", min=0, help="Clips in the train split."),
        n_val: int = typer.Option(500, "--n-val", min=0, help="Clips in the val split."),
        n_test: int = typer.Option(500, "--n-test", min=0, help="Clips in the test split."),
    ) -> None:
        """Write the synthetic motion test bed (10 motion classes) as video files in a real data-set layout.

        The result loads with vidattack.data.UCF101 / HMDB51 / Kinetics like the real data set,
        e.g. `vidattack data write-synth --out synth-ucf --layout ucf101 --limit 100`.
        """
        from tqdm import tqdm

        from vidattack.data.synthetic import LAYOUTS, SynthConfig, write_layout

        if layout not in LAYOUTS:
            raise typer.BadParameter(
                f"must be one of {', '.join(LAYOUTS)}, got {layout!r}", param_hint="--layout"
            )
        if codec not in ("ffv1", "h264"):
            raise typer.BadParameter(f"must be ffv1 or h264, got {codec!r}", param_hint="--codec")
        splits = tuple(split) if split else ("train", "test")
        for name in splits:
            if name not in ("train", "val", "test"):
                raise typer.BadParameter(f"must be train, val or test, got {name!r}", param_hint="--split")
        if layout == "ucf101" and "val" in splits:
            raise typer.BadParameter("the ucf101 layout has only train and test splits", param_hint="--split")
        config = SynthConfig(frames=frames, size=size, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test)
        total = sum(
            config.n_for(name) if limit is None else min(limit, config.n_for(name)) for name in splits
        )
        with tqdm(total=total, unit="clip", desc=f"writing {layout}") as bar:
            root = write_layout(
                out, layout, config, splits=splits, codec=codec, limit_per_split=limit, progress=bar.update
            )
        typer.echo(f"wrote {total} clips ({', '.join(splits)}) in {layout} layout to {root}")

    app.add_typer(data_app, name="data")
