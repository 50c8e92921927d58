"""Alembic's environment for pingan: always run in-process on a connection the caller
opened (pingan/store/migrate.py), never from an alembic.ini."""

from __future__ import annotations

from alembic import context

from pingan.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through pingan.store.migrate, which passes a connection")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
