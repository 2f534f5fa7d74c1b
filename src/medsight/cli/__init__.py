"""The `medsight` command: one Typer app, one module per command group.

Commands hold no logic of their own: they parse options, call the library, print.
Errors: a `MedsightError` prints one line (file, problem, what to do) and exits 1;
anything else is a bug and says so. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from enum import Enum

import typer

from medsight import __version__

app = typer.Typer(
    name="medsight",
    help="AI on medical images: read, convert, inspect (and later train, predict, explain, audit).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


class Irregular(str, Enum):
    """DICOM stacks with missing slices or uneven spacing: refuse, or interpolate."""

    error = "error"
    resample = "resample"


IRREGULAR_HELP = "DICOM gaps or uneven slice spacing: error (report them) or resample (interpolate)."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medsight {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


# Command modules register themselves on `app`; they import heavy libraries lazily.
from medsight.cli import (  # noqa: F401
    convert,
    dataset,
    deid,
    demo,
    evaluate,
    export,
    info,
    measure,
    predict,
    qc,
    synth,
    train,
)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning errors into one clear line."""
    from medsight.errors import MedsightError

    try:
        app(args=argv, prog_name="medsight")  # standalone: usage errors and exit codes as usual
    except MedsightError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"medsight: error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug, not bad input: say so plainly
        if _state["debug"]:
            raise
        typer.echo(
            f"medsight: internal error: {type(exc).__name__}: {exc}. Rerun with --debug and report it.",
            err=True,
        )
        sys.exit(3)
