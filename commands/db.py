"""CLI commands: `db copy`, moving an SQLite installation up to PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

from . import _common

db_app = typer.Typer(help="The database itself.", no_args_is_help=True)


@db_app.command("copy")
def db_copy(
    to: Annotated[str, typer.Option("--to", help="An empty PostgreSQL database: postgresql://user@host/dbname")],
    json_out: _common.JsonOption = False,
) -> None:
    """Copy this installation's SQLite database into an empty PostgreSQL database and
    check the counts (stop the workers first)."""
    from photojobs.storage import _without_password
    from photojobs.storage.copy import copy_to_postgres

    copied = copy_to_postgres(_common.settings(), to)
    if _common.wants_json(json_out):
        _common.print_json({"to": _without_password(to), "rows": copied})
        return
    _common.table([{"table": t, "rows": n} for t, n in copied.items()], ("table", "rows"))
    _common.say(f"Copied {sum(copied.values())} rows to {_without_password(to)}; counts checked."
                f" Next: set db = \"{_without_password(to)}\" in photojobs.toml on every host.")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
