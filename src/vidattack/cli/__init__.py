"""The ``vidattack`` command-line tool (Typer).

Each command group lives in its own module and registers itself on :data:`app` with a
``register(app)`` function, so the CLI grows without one file every change has to touch.
Errors a user can fix (bad file, unknown method, bad index) print one line and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer

from vidattack import __version__

app = typer.Typer(
    name="vidattack",
    help=(
        "Evaluate the adversarial robustness of video recognition models.\n\n"
        "Run an attack on one video (`vidattack attack`), train and evaluate models "
        "(`vidattack train`, `vidattack eval`, `vidattack models`), and run campaigns of attacks x "
        "models x videos (`vidattack campaign`), and attack a model behind an HTTP API (`vidattack serve`, "
        "`--model http://...`). Videos are files (mp4/avi/mkv/webm), .npz tensors, or "
        "synthetic test-bed clips (`synth:SPLIT:INDEX`)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    _state["debug"] = debug


@app.command()
def version() -> None:
    """Print the vidattack version."""
    typer.echo(__version__)


def _register_all() -> None:
    # Once per process: main() may be called many times (tests), and registering again would add every
    # command again, so that building the command group grows slower with each call.
    if _state.get("registered"):
        return
    _state["registered"] = True
    # Imported here so that a command group's import cost is paid only by the CLI.
    from vidattack.cli import (
        commands_attack,
        commands_campaign,
        commands_data,
        commands_evaluate,
        commands_flicker,
        commands_models,
        commands_serve,
        commands_sparse,
    )

    for module in (commands_attack, commands_models, commands_data, commands_campaign, commands_flicker,
                   commands_sparse, commands_serve, commands_evaluate):  # fmt: skip
        module.register(app)


class UserError(Exception):
    """An error caused by the user's input; the CLI prints its message on one line."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vidattack`` console script."""
    _register_all()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # outside standalone mode Typer returns the exit code of Ctrl-C (130) instead of exiting with it
        code = app(args=args, standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            if code == 130:  # finished items are in the store of a campaign or an evaluation
                resumable = bool(args) and args[0] in ("campaign", "evaluate")
                typer.echo("interrupted" + (": re-run the same command to resume" if resumable else ""), err=True)
            raise SystemExit(code)
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001 - the CLI boundary turns errors into one line
        if isinstance(error, typer.Abort):
            typer.echo("aborted", err=True)
            raise SystemExit(130) from None
        if _is_usage_error(error):
            error.show()  # type: ignore[attr-defined]
            raise SystemExit(getattr(error, "exit_code", 2)) from None
        if debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        typer.echo(f"error: {message}", err=True)
        raise SystemExit(2) from None


def _is_usage_error(error: Exception) -> bool:
    # Typer vendors click (typer._click) in recent releases and uses the real click in older ones;
    # both expose ClickException with .show(), which prints the usage line and the problem.
    return any(cls.__name__ == "ClickException" for cls in type(error).__mro__) and hasattr(error, "show")
