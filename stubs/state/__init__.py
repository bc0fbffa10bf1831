"""State: the simulators' databases (SQLite or PostgreSQL) and Redis, and the
transactional outbox that relays their events to the bus.

May import: ``ecom_harness.stubs.events``, ``ecom_harness.specs``.
Names load on first use (PEP 562): serving a plain spec needs none of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from ._backends import Backends, database_name, open_database, open_redis, reach_redis
    from ._database import (
        Connection,
        Database,
        Write,
        insert_if_new,
        insert_into,
        modifies_in_with,
        upsert_into,
    )
    from ._outbox import OutboxRelay, add_event, event_write, make_event, new_id, outbox_table

_EXPORTS = {
    "Backends": "._backends",
    "Connection": "._database",
    "Database": "._database",
    "OutboxRelay": "._outbox",
    "Write": "._database",
    "add_event": "._outbox",
    "event_write": "._outbox",
    "database_name": "._backends",
    "insert_if_new": "._database",
    "insert_into": "._database",
    "make_event": "._outbox",
    "modifies_in_with": "._database",
    "new_id": "._outbox",
    "open_database": "._backends",
    "open_redis": "._backends",
    "reach_redis": "._backends",
    "outbox_table": "._outbox",
    "upsert_into": "._database",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "Backends",
    "Connection",
    "Database",
    "OutboxRelay",
    "Write",
    "add_event",
    "database_name",
    "event_write",
    "insert_if_new",
    "insert_into",
    "make_event",
    "modifies_in_with",
    "new_id",
    "open_database",
    "open_redis",
    "outbox_table",
    "reach_redis",
    "upsert_into",
]
