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
from sqlalchemy.exc import DBAPIError

from mynumber.db import CONTEXTS, PROVISION_HINT, Databases, database_message
from mynumber.settings import Mode


class MigrationError(RuntimeError):
    """The database refused a migration; the message is the database's own and what to do."""

    def __init__(self, step: str, message: str, hint: str) -> None:
        super().__init__(f"{step}: the database said: {message}; {hint}")
        self.step = step
        self.database_message = message


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
    """Bring every context's database to the newest migration.

    Production: each context is migrated by its own login role, the owner of its schema
    (``mynumber db provision`` made them; :meth:`Databases.check_production_roles` refuses
    anything else first), so no role is created and none needs CREATEROLE. Embedded mode with
    one PostgreSQL login role: the context roles are prepared first, as always. Raises
    :class:`MigrationError` (the database's message) when the database refuses a step, and
    :class:`mynumber.db.DatabaseRoleError` when the roles are not isolated."""
    if databases.settings.mode is Mode.PRODUCTION:
        databases.check_production_roles(contexts)
    else:
        try:
            databases.prepare_postgres()
        except DBAPIError as exc:
            raise MigrationError(
                "preparing a role per context for the one login role of MYNUMBER_DATABASE_URL",
                database_message(exc),
                "in embedded mode that login role needs CREATEROLE (a development database); "
                "for anything else " + PROVISION_HINT) from exc
    for context in contexts:
        try:
            with databases.engine(context).begin() as connection:
                command.upgrade(alembic_config(databases, context, connection), "head")
        except DBAPIError as exc:
            raise MigrationError(f"migrating the {context} context", database_message(exc),
                                 "if it is a permission or a missing schema, "
                                 + PROVISION_HINT) from exc


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
