"""The photojobs CLI: Typer sub-apps over the library, one module per noun.

One error boundary (`main`) turns a PhotojobsError into a one-line message and its exit
code; the traceback is shown only under -v.
"""

from __future__ import annotations

import sys

import typer

from . import _common, core, db, mail, ops, orders, photos, schedule

app = typer.Typer(
    name="photojobs",
    help="Background jobs for a photo-sales business: photos, archives, mail and clean-up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.callback()(_common.global_options)
for module in (core, photos, orders, mail, ops, schedule, db):
    module.register(app)


def main() -> None:
    # Typer re-exports click's exceptions under its own names (and vendors click lately).
    usage_error = typer.BadParameter.__mro__[1]
    try:
        code = app(standalone_mode=False)
    except _common.PhotojobsError as exc:
        _common.report_error(exc)
        sys.exit(exc.exit_code)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
        else:
            command = exc.ctx.command_path if exc.ctx else "photojobs"
            sys.stderr.write(f"Error: {exc.format_message()} (see `{command} --help`)\n")
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
