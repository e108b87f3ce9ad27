"""photojobs: background jobs for a photo-sales business, on a SQLite job queue.

    import photojobs
    app = photojobs.connect("photojobs.toml")
    app.dispatch("send_email", {"outbox_id": 7})
"""

import logging

from .app import App, Dispatch, JobContext, connect
from .errors import LeaseLost, PermanentFailure, PhotojobsError, RetryLater
from .registry import job
from .settings import Settings

__all__ = ["App", "Dispatch", "JobContext", "connect", "job", "LeaseLost", "PermanentFailure", "PhotojobsError",
           "RetryLater", "Settings"]
__version__ = "0.3.0"

# A library logs, the application decides where to: the CLI adds its handlers.
logging.getLogger("photojobs").addHandler(logging.NullHandler())
