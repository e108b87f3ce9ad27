"""Start-up of the cron path: a tick with nothing to do, against a minimal Typer app.

    python bench/startup.py [--rounds 15]

Each round runs every command once, in a rotating order (so a busy moment on a shared
machine hits each alike), in a fresh initialised workspace with nothing queued. It prints
each command's median wall time and its difference from the minimal Typer app (one no-op
command, the same Typer, the same options as photojobs' app: plain help, no completion,
no pretty exceptions) and from `python -c pass`. The target (issue 11): each photojobs
command at most 40 ms above the minimal Typer app.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINIMAL_TYPER_APP = '''
import typer

app = typer.Typer(name="minimal", no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  add_completion=False, context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def main() -> None:
    """A minimal Typer app."""


@app.command()
def noop() -> None:
    """Do nothing."""


app()
'''

# The same app as Typer's floor: its help option converted without pydantic (Typer >= 0.2x
# converts every parameter through pydantic, the help option included; photojobs replaces
# that conversion, commands/_shape.py), so the difference is what photojobs itself costs.
TYPER_FLOOR_APP = MINIMAL_TYPER_APP.replace("app()", '''
command = typer.main.get_command(app)
for each in (command, *command.commands.values()):
    make_help = each.get_help_option

    def get_help_option(ctx, make_help=make_help):
        option = make_help(ctx)
        if option is not None and hasattr(option, "get_runtime_param"):
            option.get_runtime_param = lambda: type("Plain", (), {"coerce": lambda self, v, **kw: v})()
        return option

    each.get_help_option = get_help_option
command.main()
''')

COMMANDS = {
    "work --stop-when-empty": ["work", "--stop-when-empty"],
    "process-photos": ["process-photos"],
    "send-mail": ["send-mail"],
    "schedule run --once": ["schedule", "run", "--once"],
    "status": ["status"],
}


def timed(argv: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run. On a shared machine the CPU
    time is the steadier figure: it leaves out the time spent waiting for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.decode()[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "minimal.py").write_text(MINIMAL_TYPER_APP)
        (work / "floor.py").write_text(TYPER_FLOOR_APP)
        subprocess.run([sys.executable, "-m", "photojobs", "init"], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        runs = {"python -c pass": [sys.executable, "-c", "pass"],
                "minimal Typer app": [sys.executable, str(work / "minimal.py"), "noop"],
                "its help without pydantic": [sys.executable, str(work / "floor.py"), "noop"]}
        runs.update({name: [sys.executable, "-m", "photojobs", *argv] for name, argv in COMMANDS.items()})
        for argv in runs.values():  # warm the page cache and the .pyc files
            timed(argv, work, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        names = list(runs)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                times[name].append(timed(runs[name], work, env))
    print(f"medians of {args.rounds} runs, {sys.executable}, load average {os.getloadavg()[0]:.1f}"
          f" on {os.cpu_count()} cores")
    for kind, index in (("wall", 0), ("CPU", 1)):
        medians = {name: statistics.median(v[index] for v in values) * 1000 for name, values in times.items()}
        base, typer_app, floor = (medians[k] for k in ("python -c pass", "minimal Typer app",
                                                       "its help without pydantic"))
        print(f"\n{kind + ' ms':<28}{'median':>10}{'- Typer app':>13}{'- its floor':>13}{'- python':>10}")
        for name, median in medians.items():
            over = median - typer_app
            print(f"{name:<28}{median:>10.1f}{over:>+13.1f}{median - floor:>+13.1f}{median - base:>+10.1f}"
                  + ("   over target" if name in COMMANDS and over > 40 else ""))


if __name__ == "__main__":
    main()
