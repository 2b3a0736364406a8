"""Alembic environment: the URL comes from DATABASE_URL, never from a committed file."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, pool


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        env_file = Path(context.config.config_file_name or "alembic.ini").parent / ".env"
        if env_file.is_file():
            from dotenv import dotenv_values

            url = dotenv_values(env_file).get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=None, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
