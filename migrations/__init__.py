"""Alembic migrations of the kazeflow metadata schema (shipped as kazeflow.migrations)."""
