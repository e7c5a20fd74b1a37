"""The migration tests build their schema themselves: here `database_url` is an empty
database (no SQLite file yet, a new PostgreSQL database), not a copy of the migrated template
the other folders get. An `app` here is migrated by alembic from nothing, as before."""

from __future__ import annotations

import pytest


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    return empty_database_url
