"""`mynumber db`: database roles and schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mynumber.cli.common import console, container_from_env, fail

app = typer.Typer(help="Database roles and schema.", no_args_is_help=True)


@app.command("provision")
def db_provision(
    admin_url: Annotated[str, typer.Option(
        envvar="MYNUMBER_ADMIN_DATABASE_URL", show_default=False,
        help="the database administrator's URL (a superuser, or the role with CREATEROLE that "
        "owns the database), naming the application's database; used for this command only, "
        "never by the services")],
    credentials: Annotated[Path, typer.Option(
        help="libpq password file (.pgpass format) to write the context roles' passwords "
        "to, mode 0600; its directory is made 0700. Lines for other roles are kept.")],
    role_prefix: Annotated[str, typer.Option(
        help="role names are PREFIX<context>")] = "mynumber_",
    rotate_passwords: Annotated[bool, typer.Option(
        help="give every context role a new password (default: existing roles keep theirs)",
    )] = False,
) -> None:
    """Create (or correct) one LOGIN role and schema per context, isolated from each other.

    Run once by the database administrator, before the first `mynumber db upgrade`, and
    again after an upgrade that adds a context. Idempotent."""
    from sqlalchemy.exc import DBAPIError

    from mynumber.db import database_message
    from mynumber.db_roles import ProvisionError, provision
    from mynumber.keys.files import KeyFileError

    try:
        report = provision(admin_url, credentials, prefix=role_prefix,
                           rotate_passwords=rotate_passwords)
    except (ProvisionError, KeyFileError) as exc:
        fail(str(exc))
    except DBAPIError as exc:
        fail(f"the database refused: {database_message(exc)}; run provision with the "
             "database administrator's URL (a superuser, or a role with CREATEROLE that owns "
             "the database)")
    for role in report.created:
        console.print(f"created role {role}")
    for change in report.corrected:
        console.print(f"corrected: {change}")
    if report.passwords_set:
        console.print(f"new passwords for: {', '.join(report.passwords_set)}")
    console.print(f"database {report.database}: one login role and schema per context; "
                  f"passwords in {report.credentials} (0600)")
    console.print("On every service host, with the password file copied there (0600, owned "
                  "by the service's user, only the lines of the contexts it runs), set:")
    console.print(f"  MYNUMBER_DATABASE_URL='{report.url_template}'", soft_wrap=True,
                  highlight=False, markup=False)
    console.print("then run `mynumber db upgrade` (it migrates each context as its own role).")


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate every context's database, and load reference data."""
    from sqlalchemy.exc import DBAPIError

    from mynumber import migrations
    from mynumber.app import sync_directory
    from mynumber.db import PROVISION_HINT, DatabaseRoleError, database_message
    from mynumber.registry.services import load_municipalities

    container = container_from_env(create=True)
    try:
        migrations.upgrade(container.databases)
        loaded = load_municipalities(container.databases)
        agencies = sync_directory(container)
    except (DatabaseRoleError, migrations.MigrationError) as exc:
        fail(str(exc))
    except DBAPIError as exc:
        fail(f"the database said: {database_message(exc)}; if it is a permission, "
             + PROVISION_HINT)
    finally:
        container.close()
    where = "PostgreSQL" if container.settings.is_postgres else str(container.settings.data_dir)
    console.print(f"databases up to date ({where}); municipalities loaded: {loaded}; "
                  f"agencies added to the network directory: {agencies}")


@app.command("check")
def db_check() -> None:
    """Fail if the models and the migrated database disagree."""
    from mynumber import migrations
    from mynumber.db import CONTEXTS

    container = container_from_env()
    problems = {ctx: migrations.differences(container.databases, ctx) for ctx in CONTEXTS}
    bad = {ctx: diff for ctx, diff in problems.items() if diff}
    if bad:
        for ctx, diff in bad.items():
            console.print(f"[red]{ctx}[/red]: {diff}")
        raise typer.Exit(1)
    console.print("models and migrations agree")
