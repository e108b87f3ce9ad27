"""Which packages the wheel holds, found rather than listed (a hand list once left out
photojobs.ops). Everything else is in pyproject.toml. The CLI's folder commands/ is
installed as photojobs.commands (package-dir in pyproject.toml), never as a top-level
package of its own."""

from setuptools import find_packages, setup

library = find_packages(include=["photojobs", "photojobs.*"])
cli = ["photojobs." + name for name in find_packages(include=["commands", "commands.*"])]
setup(packages=library + cli)
