"""A workspace's locks that more than one app takes (PostgreSQL advisory locks).

They live here, below the apps that take them, so that an app deleting what
another app keeps can queue behind that app's writers without importing it.
"""

from __future__ import annotations

from django.db import connection

# Where a workspace's incidents sit (their modes, their vectors, their modes'
# counts). Taken by the failures app's writers (`failures.services.modes_lock`) and
# by the retention purge, which deletes incidents with their traces.
INCIDENTS = 0x434C55


def workspace_xact_lock(key: int, workspace_id: int, *, shared: bool = False) -> None:
    """Take the workspace's lock `key` until the current transaction ends, before any
    row is written: writers that would each hold rows the other waits for queue
    instead of deadlocking. Shared holders run beside each other."""
    if not connection.in_atomic_block:
        raise RuntimeError("a workspace lock is held to the end of a transaction: take it in one")
    take = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {take}(%s, %s)", [key, workspace_id])
