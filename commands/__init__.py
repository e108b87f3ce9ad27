"""The photojobs CLI: Typer sub-apps over the library, one module per noun.

One error boundary (`main`) turns a PhotojobsError into a one-line message and its exit
code; the traceback is shown only under -v.
"""

from __future__ import annotations

import sys

import typer

from . import _common, _shape, core, db, mail, ops, orders, photos, schedule

MODULES = (core, photos, orders, mail, ops, schedule, db)


def make_app(modules=MODULES) -> typer.Typer:
    """The Typer app with the global options and the commands of `modules`."""
    typer_app = typer.Typer(
        name="photojobs",
        help="Background jobs for a photo-sales business: photos, archives, mail and clean-up.\n\n"
             "The options below may also follow the command: `photojobs status --json -v`.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    typer_app.callback()(_common.global_options)
    for module in modules:
        module.register(typer_app)
    return typer_app


app = make_app()


def _module_of(name: str):
    """The module that registers the command or group `name`, if any."""
    for module in MODULES:
        probe = typer.Typer()
        module.register(probe)
        names = {info.name or info.callback.__name__.lower().replace("_", "-") for info in probe.registered_commands}
        if name in names | {info.name for info in probe.registered_groups}:
            return module
    return None


def cli_command(args: list[str] | None = None):
    """The click command tree, with the CLI's own shape (commands/_shape.py).

    Given a command line, only the module of the command it names is turned into click
    commands: Typer builds each command's parameters from its signature, and a cron tick
    should not pay for all ~45. Help, a misspelled command or none build the whole tree."""
    modules = MODULES
    if args:
        name = _shape.command_name(typer.main.get_command(make_app(())), args)
        module = _module_of(name) if name else None
        modules = (module,) if module else MODULES
    return _shape.polish(typer.main.get_command(app if modules is MODULES else make_app(modules)))


EXIT_BROKEN_PIPE = 141


def main() -> None:
    # Typer re-exports click's exceptions under its own names (and vendors click lately).
    usage_error = typer.BadParameter.__mro__[1]
    command = cli_command(sys.argv[1:])
    try:
        code = command.main(args=_shape.hoist_global_options(command, sys.argv[1:]), standalone_mode=False)
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
    except SystemExit as exc:
        # click answers a closed pipe (`photojobs logs | head`) with exit 1, which here means
        # "a job failed": exit as a Unix tool stopped by SIGPIPE does (128 + 13) instead.
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            sys.exit(EXIT_BROKEN_PIPE)
        raise
    sys.exit(code if isinstance(code, int) else 0)
