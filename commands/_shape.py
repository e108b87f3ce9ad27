"""The CLI's shape over Typer: global options before or after the command, help and errors
in the user's words, and values parsed without pydantic.

Recent Typer converts every value through pydantic: ~100 ms of each cron tick's start-up
spent importing it, and errors such as "Input should be a valid integer". `polish` walks
the command tree once and gives each parameter a plain conversion, a metavar a user reads
(`--album NAME`, `PATH...`, not `<str>` or `{paths}...`), and no `[default: 0]` on -v.
It only sets attributes that exist, so an older Typer (plain click types) works as well.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

# What an option's value is, in a user's words (by the option's long name).
OPTION_METAVARS = {
    "--config": "PATH", "--db": "PATH|URL", "--storage": "DIR", "--album": "NAME", "--name": "NAME",
    "--email": "ADDRESS", "--to": "ADDRESS", "--template": "NAME", "--conversion": "NAME", "--photo": "ID",
    "--order": "ID", "--download": "ID", "--job": "ID", "--queue": "QUEUE", "--payload": "JSON",
    "--unique-key": "KEY", "--status": "STATUS", "--level": "LEVEL", "--filter": "TEXT", "--from": "TIME",
    "--out": "FILE", "--log-file": "FILE", "--memory": "MB", "--expires-days": "DAYS", "--hours": "HOURS",
}
SECONDS = {"--max-time", "--timeout", "--delay", "--sleep", "--interval", "--max-age"}
BOOLEAN_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
                 "off": False}
# Arguments, by parameter name: the word for one value.
ARGUMENT_WORDS = {"paths": "PATH", "folder": "DIR", "job_ids": "ID", "queues": "QUEUES"}


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the type of one value, whether the parameter takes a list) for X, Optional[X], List[X]."""
    is_list = False
    for _ in range(3):
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
        elif origin is list and len(args) == 1:
            annotation, is_list = args[0], True
        elif origin is typing.Annotated:
            annotation = args[0]
        else:
            break
    return annotation, is_list


class PlainValue:
    """A parameter's conversion from the command line: str, int, float or Path, with its
    min/max, and errors that say what was expected ("'abc' is not a whole number")."""

    def __init__(self, kind: type, minimum: Any = None, maximum: Any = None):
        self.kind, self.minimum, self.maximum = kind, minimum, maximum

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if (param.multiple or param.nargs == -1) else None
        if isinstance(value, (list, tuple)):
            return [self.one(item, param, ctx) for item in value]
        return self.one(value, param, ctx)

    def one(self, value: Any, param: Any, ctx: Any) -> Any:
        import typer

        if self.kind is str:
            return value if isinstance(value, str) else str(value)
        if self.kind is Path:
            return Path(value)
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in BOOLEAN_WORDS:
                return BOOLEAN_WORDS[str(value).lower()]
            raise typer.BadParameter(f"{value!r} is not yes or no", ctx=ctx, param=param)
        try:
            number = self.kind(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or (self.kind is int and isinstance(value, float) and value != int(value)):
            what = "a whole number" if self.kind is int else "a number"
            raise typer.BadParameter(f"{value!r} is not {what}", ctx=ctx, param=param)
        if self.minimum is not None and number < self.minimum:
            raise typer.BadParameter(f"must be at least {self.minimum}, not {value}", ctx=ctx, param=param)
        if self.maximum is not None and number > self.maximum:
            raise typer.BadParameter(f"must be at most {self.maximum}, not {value}", ctx=ctx, param=param)
        return number


def _plain_conversion(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not hasattr(param, "get_runtime_param"):
        return  # an older Typer: click's own types convert
    kind, _ = _base_type(descriptor.annotation)
    info = descriptor.parameter_info
    if kind in (str, int, float, bool, Path) and getattr(info, "parser", None) is None:
        converter = PlainValue(kind, getattr(info, "min", None), getattr(info, "max", None))
        param.get_runtime_param = lambda: converter


def _option_metavar(param: Any) -> str:
    long_name = max(param.opts, key=len)
    if long_name in OPTION_METAVARS:
        return OPTION_METAVARS[long_name]
    descriptor = getattr(param, "type_descriptor", None)
    kind = _base_type(descriptor.annotation)[0] if descriptor is not None else None
    if long_name in SECONDS:
        return "SECONDS"
    if kind in (int, float) or getattr(getattr(param, "type", None), "name", "") in ("integer", "float"):
        return "N"
    return long_name.lstrip("-").upper()


def _argument_word(param: Any) -> str:
    given = re.sub(r"[^A-Za-z_|]", "", param.metavar or "")
    if given:
        return given
    if param.name.endswith(("_id", "_ids")):
        return "ID"
    return ARGUMENT_WORDS.get(param.name) or param.name.upper()


def _range_words(param: Any) -> str | None:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    if low is not None:
        return f"at least {low:g}"
    return f"at most {high:g}" if high is not None else None


def _polish_argument(param: Any) -> None:
    word = _argument_word(param)
    many = param.nargs != 1
    param.metavar = (word if param.required else f"[{word}]") + ("..." if many else "")
    param.get_error_hint = lambda *args, text=word: f"'{text}'"
    if hasattr(param, "display_type_rich"):  # Typer's own help adds "<list[str]>" and braces
        param.display_type_rich = lambda ctx: None
        param.get_usage_pieces = lambda ctx, text=param.metavar: [text]


def _polish_option(param: Any) -> None:
    if getattr(param, "count", False):
        param.show_default = False  # "-v, --verbose [default: 0]" says nothing
    if not (param.is_flag or param.count) and param.metavar is None:
        param.metavar = _option_metavar(param)
    if hasattr(param, "_get_number_range_help_str") and not param.count:  # "at least 1", not "x>=1"
        param._get_number_range_help_str = lambda param=param: _range_words(param)


def polish(command: Any) -> Any:
    """Apply the module's rules to every parameter of `command` and its subcommands."""
    for param in command.params:
        _plain_conversion(param)
        if param.param_type_name == "argument":
            _polish_argument(param)
        elif param.param_type_name == "option":
            _polish_option(param)
    help_option = command.get_help_option  # made per call, so polished as it is made

    def get_help_option(ctx: Any) -> Any:
        option = help_option(ctx)
        if option is not None:
            _plain_conversion(option)
        return option

    command.get_help_option = get_help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        polish(sub)
    return command


# -- global options anywhere ----------------------------------------------------------------

def _options(command: Any) -> dict[str, bool]:
    """Option name -> whether it takes a value, for one command (help included)."""
    names = {"-h": False, "--help": False}
    for param in command.params:
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                names[name] = not (param.is_flag or param.count)
    return names


def command_name(root: Any, args: list[str]) -> str | None:
    """The first word of the command line that is not a root option or its value."""
    options = _options(root)
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--":
            return args[index + 1] if index + 1 < len(args) else None
        if not token.startswith("-") or token == "-":
            return token
        if options.get(token.split("=", 1)[0]) and "=" not in token:
            index += 1  # the option's value
        index += 1
    return None


def hoist_global_options(root: Any, args: list[str]) -> list[str]:
    """Move the root's options (-v, -q, --json, --config, --db) found after a command name
    to the front, so `photojobs status --json -v` means `photojobs --json -v status`.
    A command's own option of the same name (`init --db`, `status --json`) stays its own;
    values of options are never taken for option names; `--` ends the search."""
    globals_ = _options(root)
    del globals_["-h"], globals_["--help"]
    front: list[str] = []
    rest: list[str] = []
    command, index = root, 0
    while index < len(args):
        token = args[index]
        if token == "--":
            rest.extend(args[index:])
            break
        name = token.split("=", 1)[0] if token.startswith("--") else token
        own = _options(command)
        if token.startswith("-") and len(token) > 1:
            is_global = name in globals_ or (re.fullmatch(r"-v+", token) is not None and "-v" in globals_)
            target = front if command is not root and name not in own and is_global else rest
            takes_value = own.get(name, globals_.get(name, False)) if target is rest else globals_.get(name, False)
            target.append(token)
            if takes_value and "=" not in token and index + 1 < len(args):
                index += 1
                target.append(args[index])
        else:
            rest.append(token)
            commands = getattr(command, "commands", None)
            if isinstance(commands, dict) and token in commands:
                command = commands[token]
        index += 1
    return front + rest
