"""For the tests: re-exports hil/harness/pg.py (one harness for tests, bench and hil)."""

from hil.harness.pg import (  # noqa: F401
    PG_BIN,
    PostgresServer,
    pg_available,
)
