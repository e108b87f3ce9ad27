"""Job types: `@job(name, queue=..., tries=..., timeout=..., backoff=...)`.

A job's payload is a JSON object whose keys are the handler's keyword arguments; the
handler's signature is the payload's schema (names, required keys, simple types), so a
payload that does not fit fails at dispatch, or at once in the worker, never with a retry.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import json
import sys
import types
import typing
from typing import Any, Callable

from .errors import ConfigError, InvalidPayload, UnknownJob
from .retry import Backoff, parse_backoff

DEFAULT_QUEUE = "default"
BUILTIN_MODULES = ("photojobs.jobs",)

_JSON_TYPES = {int: (int,), float: (int, float), str: (str,), bool: (bool,), list: (list,), dict: (dict,)}


@dataclasses.dataclass
class JobSpec:
    name: str
    func: Callable[..., Any]
    queue: str = DEFAULT_QUEUE
    tries: int | None = None  # None: the worker's --tries
    timeout: float | None = None  # None: the worker's --timeout
    backoff: Backoff | None = None
    unique: Callable[[dict], str] | None = None  # payload -> unique key
    context: bool = False  # pass a JobContext as the first argument
    on_failure: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        params = list(inspect.signature(self.func).parameters.values())
        if self.context:
            params = params[1:]
        self._params = {p.name: p for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        self._accepts_any = any(p.kind == p.VAR_KEYWORD for p in params)
        self._hints = typing.get_type_hints(self.func)

    def failed(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Register `func(ctx, error, **payload)`, run once when a job lands in the failed table."""
        self.on_failure = func
        return func

    def validate(self, payload: Any) -> dict:
        """Return the payload if it fits the handler's signature, else raise InvalidPayload."""
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise InvalidPayload(f"{self.name}: the payload must be a JSON object, not {type(payload).__name__}")
        unknown = [k for k in payload if k not in self._params]
        if unknown and not self._accepts_any:
            raise InvalidPayload(f"{self.name}: unknown payload key {unknown[0]!r}"
                                 f" (accepted: {', '.join(self._params) or 'none'})")
        for name, param in self._params.items():
            if name not in payload:
                if param.default is inspect.Parameter.empty:
                    raise InvalidPayload(f"{self.name}: the payload lacks {name!r}")
                continue
            expected = self._hints.get(name)
            if expected is not None and not _fits(payload[name], expected):
                raise InvalidPayload(f"{self.name}: {name} must be {_type_name(expected)},"
                                     f" not {json.dumps(payload[name])}")
        return payload

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def _fits(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    base = origin or expected
    allowed = _JSON_TYPES.get(base)
    if allowed is None:
        return True
    if isinstance(value, bool) and base is not bool:
        return False
    return isinstance(value, allowed)


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def _where(exc: BaseException, module: str) -> str:
    """"FILE, line N" of the deepest frame of the traceback inside the module's own file."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    try:
        origin = getattr(importlib.util.find_spec(module), "origin", None)
    except (ImportError, ValueError):
        origin = None
    own = [f for f in frames if f.filename == origin]
    chosen = (own or [f for f in frames if not f.filename.startswith("<")] or frames or [None])[-1]
    return f"{chosen.filename}, line {chosen.lineno}" if chosen else "no traceback"


class Registry:
    def __init__(self) -> None:
        self._jobs: dict[str, JobSpec] = {}
        self._loaded: set[str] = set()

    def job(self, name: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], JobSpec]:
        def register(func: Callable[..., Any]) -> JobSpec:
            if "backoff" in options:
                options["backoff"] = parse_backoff(options["backoff"])
            spec = JobSpec(name or func.__name__, func, **options)
            self._jobs[spec.name] = spec
            return spec

        return register

    def load(self, modules: tuple[str, ...] | list[str] = (), root: str | None = None) -> None:
        """Import the built-in job modules and the user's `imports`, registering their jobs.

        `root` (the config file's folder) is searched too, so `imports = ["myjobs"]` finds
        the myjobs.py that sits beside photojobs.toml.
        """
        if modules and root and root not in sys.path:
            sys.path.append(root)
        for module in (*BUILTIN_MODULES, *modules):
            if module in self._loaded:
                continue
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigError(f"cannot import job module {module!r}: {exc}") from exc
            except SyntaxError as exc:
                raise ConfigError(f"job module {module!r} has a syntax error: {exc.msg}"
                                  f" ({exc.filename}, line {exc.lineno})") from exc
            except Exception as exc:
                raise ConfigError(f"job module {module!r} raised {type(exc).__name__} while imported: {exc}"
                                  f" ({_where(exc, module)})") from exc
            self._loaded.add(module)

    def get(self, name: str) -> JobSpec:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs)) or "none"
            raise UnknownJob(f"no job named {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._jobs)


registry = Registry()
job = registry.job
