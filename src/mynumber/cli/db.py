"""`mynumber db`: database schema."""

from __future__ import annotations

import typer

from mynumber.cli.common import console, container_from_env

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate every context's database, and load reference data."""
    from mynumber import migrations
    from mynumber.registry.services import load_municipalities

    container = container_from_env()
    migrations.upgrade(container.databases)
    from mynumber.app import sync_directory

    loaded = load_municipalities(container.databases)
    agencies = sync_directory(container)
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
