"""How long the server waits before it gives an activity attempt to another worker: one policy.

A worker killed with SIGKILL tells nobody. Temporal notices only when a timeout of the running attempt
runs out, and only then schedules the next attempt on a live worker. So every attempt must be bounded
by a *short* timeout, whatever the activity's total duration:

- long activities (watches, waits, copies) heartbeat, with :data:`HEARTBEAT_TIMEOUT`; their long
  ``start_to_close`` only bounds a stuck attempt. Their heartbeats carry progress, so the next attempt
  resumes where the killed one stopped.
- activities that cannot heartbeat (one API round trip) are *short*: ``start_to_close`` of at most
  :data:`SHORT_CALL`. Not yet: the Redfish calls of workflows/server.py keep ``SHORT`` (60 s), as a
  single BMC request may take its 30 s timeout (docs/reliability.md, "Recovery time", limits).

On SIGTERM the worker does better than a timeout (``workers/shutdown.py``): it fails a heartbeating
attempt at once with a retryable ``WorkerShutdown`` error, so another worker starts the next attempt
within a second, and lets short calls finish within its grace period.

Changing these values changes no workflow command (timeouts are options of the same
ScheduleActivityTask command), so running workflows replay unchanged (tests/workflow/test_replay.py).
"""

from __future__ import annotations

from datetime import timedelta

#: At most this long between a worker's death and the server noticing a heartbeating activity.
#: The SDK sends heartbeats at most every 80 % of it (throttling), so an activity must call
#: ``activity.heartbeat`` at least every few seconds (``activities/liveness.py`` helps).
HEARTBEAT_TIMEOUT = timedelta(seconds=10)

#: Upper bound for the heartbeat timeout of anything (issue 18: detection within 15 s).
MAX_HEARTBEAT_TIMEOUT = timedelta(seconds=15)

#: An activity that does not heartbeat must finish an attempt within this (one or a few API calls
#: with their own request timeouts below it).
SHORT_CALL = timedelta(seconds=15)


def capped_heartbeat(value: timedelta | None) -> timedelta | None:
    """A step type's heartbeat timeout, never above :data:`MAX_HEARTBEAT_TIMEOUT` (None stays None)."""
    if value is None:
        return None
    return min(value, MAX_HEARTBEAT_TIMEOUT)
