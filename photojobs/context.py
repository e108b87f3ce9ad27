"""What a job handler declared with `context=True` receives first: its job, the App that
runs it, the settings. Its own module, so the code that runs jobs needs nothing of the App
but the object it is given."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .storage import Job

if TYPE_CHECKING:
    from .app import App
    from .settings import Settings


@dataclasses.dataclass
class JobContext:
    """What a handler declared with `context=True` receives first."""

    app: "App"
    job: Job

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @property
    def db(self) -> Any:
        """The engine's own DB-API connection (prefer `app.transaction()`'s `tx.execute`)."""
        return self.app.backend.conn

    @property
    def settings(self) -> "Settings":
        return self.app.settings

    @property
    def storage(self) -> Path:
        return self.app.settings.storage_path

    def holds_lease(self) -> bool:
        """Whether this attempt still holds its job. Call it inside the transaction that
        makes the job's result visible: False means another attempt owns the job now."""
        return self.job.worker is None or self.app.backend.holds(self.job.id, self.job.worker)
