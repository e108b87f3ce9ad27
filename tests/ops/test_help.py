"""Every command and group of the whole CLI has help text."""

from __future__ import annotations

import typer

from photojobs.commands import app


def _walk(command, path: str):
    """Depth-first over the command tree (duck-typed: newer Typer vendors its own click)."""
    yield path, command
    if isinstance(getattr(command, "commands", None), dict):
        for name, sub in command.commands.items():
            yield from _walk(sub, f"{path} {name}")


def _lacking_help(typer_app: typer.Typer, name: str) -> tuple[list[str], set[str]]:
    commands = list(_walk(typer.main.get_command(typer_app), name))
    return [path for path, command in commands if not (command.help or "").strip()], {p for p, _ in commands}


def test_every_command_has_help_text():
    lacking, names = _lacking_help(app, "photojobs")
    assert {"photojobs failed retry", "photojobs status", "photojobs queue restart", "photojobs logs",
            "photojobs batch show", "photojobs work"} <= names
    assert lacking == [], f"commands without help text: {', '.join(lacking)}"


def test_the_check_finds_a_command_without_help():
    demo = typer.Typer(help="Demo.")
    group = typer.Typer()  # a group without help, too

    @demo.command()
    def documented() -> None:
        """Has help."""

    @group.command()
    def bare() -> None:
        pass

    @group.command()
    def other() -> None:
        """Has help."""

    demo.add_typer(group, name="grp")
    assert _lacking_help(demo, "demo")[0] == ["demo grp", "demo grp bare"]


def test_help_runs_for_the_ops_commands(cli):
    for args in (["failed", "--help"], ["queue", "clear", "--help"], ["monitor", "--help"], ["logs", "-h"]):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
