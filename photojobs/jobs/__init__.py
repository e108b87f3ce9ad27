"""The built-in job types. Importing this package registers them.

Each module here is a thin wrapper over a pure core elsewhere in the package and keeps
its heavy imports (Pillow, Jinja2, smtplib) inside the handlers, so a worker that finds
no work never pays for them.
"""

from . import archives, cleanup, mail, photos, prune  # noqa: F401
