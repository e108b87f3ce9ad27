"""Operating the queue: failed jobs, status and monitoring, pausing queues, restarts, batches.

Every function takes an `App` (photojobs.connect(...)) and returns plain data (dicts and
lists that `json.dumps` accepts), so the CLI prints it as a table or as JSON.
"""

from .batches import list_batches, show_batch
from .failed import flush_failed, forget_failed, list_failed, prune_failed, retry_failed, show_failed
from .queues import clear_queue, pause_queue, paused_queues, request_restart, restart_requested_after, resume_queue
from .overview import monitor, status

__all__ = ["list_batches", "show_batch", "flush_failed", "forget_failed", "list_failed", "prune_failed",
           "retry_failed", "show_failed", "clear_queue", "pause_queue", "paused_queues", "request_restart",
           "restart_requested_after", "resume_queue", "monitor", "status"]
