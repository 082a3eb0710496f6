"""Alembic, once per context: each context keeps its migrations in ``<context>/migrations``
and its version table in its own database (SQLite file or PostgreSQL schema)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from mynumber.db import CONTEXTS, Databases


def context_metadata(context: str) -> MetaData:
    module = importlib.import_module(f"mynumber.{context}.models")
    metadata: MetaData = module.Base.metadata
    return metadata


def alembic_config(databases: Databases, context: str, connection: Any = None) -> Config:
    package = importlib.import_module(f"mynumber.{context}")
    location = Path(package.__file__ or "").parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("path_separator", "os")
    config.attributes["context_name"] = context
    config.attributes["metadata"] = context_metadata(context)
    config.attributes["connection"] = connection
    return config


def upgrade(databases: Databases, contexts: tuple[str, ...] = CONTEXTS) -> None:
    """Bring every context's database to the newest migration."""
    databases.prepare_postgres()
    for context in contexts:
        with databases.engine(context).begin() as connection:
            command.upgrade(alembic_config(databases, context, connection), "head")


def differences(databases: Databases, context: str) -> list[Any]:
    """What the models declare that the migrated database lacks (empty when they agree)."""
    with databases.engine(context).connect() as connection:
        migration = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(migration, context_metadata(context)))


def _render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    # Migrations must not import application code: render our column types as plain SQLAlchemy.
    from mynumber.db import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_env() -> None:
    """Called from each context's ``migrations/env.py``."""
    from alembic import context as alembic_context

    config = alembic_context.config
    connection = config.attributes.get("connection")
    if connection is None:  # pragma: no cover - autogenerate from the alembic CLI
        raise RuntimeError("run migrations through `mynumber db upgrade`")
    alembic_context.configure(
        connection=connection,
        target_metadata=config.attributes["metadata"],
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with alembic_context.begin_transaction():
        alembic_context.run_migrations()
