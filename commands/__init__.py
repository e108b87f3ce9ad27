"""The photojobs CLI: Typer sub-apps over the library, one module per noun.

One error boundary (`main`) turns a PhotojobsError into a one-line message and its exit
code; the traceback is shown only under -v.
"""

from __future__ import annotations

import sys

import typer

from . import _common, core, mail, ops, orders, photos, schedule

app = typer.Typer(
    name="photojobs",
    help="Background jobs for a photo-sales business: photos, archives, mail and clean-up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.callback()(_common.global_options)
for module in (core, photos, orders, mail, ops, schedule):
    module.register(app)


def main() -> None:
    try:
        app()
    except _common.PhotojobsError as exc:
        _common.report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
