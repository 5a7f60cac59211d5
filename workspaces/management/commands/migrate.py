"""`migrate`, serialised across processes with a PostgreSQL advisory lock.

Two `make run` started together both migrate; PostgreSQL's DDL is not safe to
race (two `CREATE EXTENSION`/`CREATE TABLE` for the same name, one fails), so
the second waits for the first and then finds nothing left to do.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

# Arbitrary constant naming "Hivemind schema migration" among advisory locks.
MIGRATION_LOCK_ID = 0x48_4D_4D_49


class Command(DjangoMigrate):
    def handle(self, *args: Any, **options: Any) -> Any:
        connection = connections[options["database"]]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_ID])
        try:
            return super().handle(*args, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_ID])
