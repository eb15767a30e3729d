"""Repositories: thin, typed queries over one AsyncSession, one module per aggregate; the unit of work
owns the transaction and hands them out.

No business rules live here: callers decide what to store and when; these classes only know how
to store it safely on SQLite and PostgreSQL alike (upserts, claims, leases). They take and return
the domain's entities (mapped in storage.mapping) and satisfy the Protocols of bot.services.ports.

The queries of a booking turn are Core statements built once at import (values travel as bound
parameters), so SQLAlchemy neither rebuilds nor recompiles them on every call; rows several of
them insert at once go in one statement (on SQLite every statement is a trip to the driver's thread).
"""

from storage import mapping as _mapping  # noqa: F401  (entities are mapped before any statement names them)
