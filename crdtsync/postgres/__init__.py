"""crdtsync.postgres: PostgreSQL tables as entity types, fed by logical replication (pgoutput).

Install with the ``postgres`` extra (psycopg 3). See docs/postgres.md.

- :class:`Table`: a table -> an :class:`~crdtsync.normalize.EntityType` (and its columns);
- :class:`PostgresBridge`: copies the tables in a consistent snapshot, then applies every
  committed transaction as one CRDT update per affected document, crash-safely;
- :mod:`crdtsync.postgres.pgoutput`: the pure pgoutput message decoder.
"""

from .bridge import PostgresBridge, postgres_origin
from .tables import Table

__all__ = ["PostgresBridge", "Table", "postgres_origin"]
