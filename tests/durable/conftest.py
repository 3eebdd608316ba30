"""A real PostgreSQL server for the session (see pg_server.py); `make test` requires one."""

import os

import pytest
from pg_server import PostgresServer, unavailable


@pytest.fixture(scope="session")
def postgres_server():
    reason = unavailable()
    if reason is not None:
        if os.environ.get("PLAIT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PLAIT_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server):
    """A URL of the session's server, with its own empty schema."""
    return postgres_server.fresh_schema()
