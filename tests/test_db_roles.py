"""Database roles that isolate (issue 11, item 1).

`mynumber db provision` gives every context its own PostgreSQL LOGIN role owning its schema;
the services connect each context with its role (``{context}`` in MYNUMBER_DATABASE_URL) and a
context's connection cannot read another context's tables by any means. Production refuses
anything else. Each test provisions a throwaway database of the test cluster with a role
prefix of its own (roles are cluster-wide).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from typer.testing import CliRunner

from mynumber import migrations
from mynumber.cli import app
from mynumber.db import CONTEXTS, DatabaseRoleError, Databases
from mynumber.db_roles import ProvisionError, provision, read_passwords
from mynumber.settings import Mode, Settings

PG_URL = os.environ.get("MYNUMBER_TEST_DATABASE_URL")
needs_pg = pytest.mark.skipif(
    not PG_URL, reason="database roles are PostgreSQL's: run under bin/with-postgres")
runner = CliRunner()


# --- fixtures --------------------------------------------------------------------------------


@dataclass
class Provisioned:
    admin_url: str      # the superuser, connected to the throwaway database
    database: str
    prefix: str
    credentials: Path
    template: str       # MYNUMBER_DATABASE_URL with {context}

    def role(self, context: str) -> str:
        return f"{self.prefix}{context}"

    def url(self, context: str) -> str:
        return self.template.replace("{context}", context)


def _admin(url: str | None = None) -> Engine:
    """The superuser, on ``url``'s database (default: the cluster's maintenance database)."""
    return create_engine(url or PG_URL or "", isolation_level="AUTOCOMMIT")


@contextmanager
def _throwaway_database(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A fresh database and a role prefix of its own; both dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    name, prefix = f"mn_roles_{suffix}", f"mnr{suffix}_"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name, prefix, make_url(PG_URL or "").set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for context in CONTEXTS:
                conn.execute(text(f'DROP ROLE IF EXISTS "{prefix}{context}"'))
        admin.dispose()


@pytest.fixture
def provisioned(tmp_path: Path) -> Iterator[Provisioned]:
    with _throwaway_database(tmp_path) as (name, prefix, admin_url):
        credentials = tmp_path / "secrets" / "pgpass"
        report = provision(admin_url, credentials, prefix=prefix)
        yield Provisioned(admin_url, name, prefix, credentials, report.url_template)


def _production(provisioned: Provisioned, tmp_path: Path) -> Databases:
    return Databases(Settings(mode=Mode.PRODUCTION, database_url=provisioned.template,
                              data_dir=tmp_path / "data", key_dir=tmp_path / "keys"))


@pytest.fixture
def migrated(provisioned: Provisioned, tmp_path: Path) -> Iterator[Provisioned]:
    """Provisioned and migrated in production mode, each context by its own role."""
    databases = _production(provisioned, tmp_path)
    try:
        migrations.upgrade(databases)
    finally:
        databases.dispose()
    yield provisioned


@contextmanager
def _connect_as(provisioned: Provisioned, context: str) -> Iterator[psycopg.Connection]:
    """A plain libpq connection as the context's role, with the URL the services use."""
    url = make_url(provisioned.url(context))
    conninfo = psycopg.conninfo.make_conninfo(
        host=url.host, port=url.port, dbname=url.database, user=url.username,
        **{k: str(v) for k, v in url.query.items()})
    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield conn


def _refused(conn: psycopg.Connection, sql: str) -> str:
    """Run ``sql``; it must be refused for lack of privilege. Returns the database's words."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute(sql)
    return str(refused.value)


def _a_table(context: str) -> str:
    return sorted(migrations.context_metadata(context).tables)[0]


# --- the isolation test ----------------------------------------------------------------------


@needs_pg
def test_a_context_cannot_read_another_contexts_schema_by_any_means(
        migrated: Provisioned) -> None:
    registry_table = _a_table("registry")
    with _connect_as(migrated, "portal") as portal:
        assert portal.execute("SELECT current_user, session_user, current_schema()"
                              ).fetchone() == (migrated.role("portal"),) * 2 + ("portal",)
        # Its own tables it can read.
        portal.execute(f"SELECT count(*) FROM portal.{_a_table('portal')}")
        # A qualified name.
        message = _refused(portal, f"SELECT * FROM registry.{registry_table}")
        assert "permission denied for schema registry" in message
        # RESET ROLE: there is no other role to fall back to.
        portal.execute("RESET ROLE")
        assert portal.execute("SELECT current_user").fetchone() == (migrated.role("portal"),)
        _refused(portal, f"SELECT * FROM registry.{registry_table}")
        # SET ROLE to the registry's role (or any role), SET SESSION AUTHORIZATION.
        assert "permission denied to set role" in _refused(
            portal, f'SET ROLE "{migrated.role("registry")}"')
        _refused(portal, "SET ROLE postgres")
        _refused(portal, f'SET SESSION AUTHORIZATION "{migrated.role("registry")}"')
        _refused(portal, "SET SESSION AUTHORIZATION postgres")
        # Nowhere to put a view or function reading across: not public, not a new schema,
        # not a temporary table.
        assert "permission denied for schema public" in _refused(
            portal, "CREATE TABLE public.leak (i int)")
        assert "permission denied for schema public" in _refused(
            portal, "CREATE VIEW public.leak AS SELECT 1 AS i")
        _refused(portal, "CREATE SCHEMA leak")
        _refused(portal, "CREATE TEMPORARY TABLE leak (i int)")
        # Its own schema's objects cannot reach another schema either.
        _refused(portal, f"CREATE VIEW portal.leak AS SELECT * FROM registry.{registry_table}")
        # Nor can it hand itself rights on another schema.
        _refused(portal, f'GRANT USAGE ON SCHEMA registry TO "{migrated.role("portal")}"')
        _refused(portal, f'ALTER SCHEMA registry OWNER TO "{migrated.role("portal")}"')
    # Every context against every other one, by qualified name.
    for context in CONTEXTS:
        with _connect_as(migrated, context) as conn:
            for other in CONTEXTS:
                if other != context:
                    assert f"permission denied for schema {other}" in _refused(
                        conn, f"SELECT * FROM {other}.{_a_table(other)}")


@needs_pg
def test_the_roles_hold_no_privilege_and_no_membership(migrated: Provisioned) -> None:
    roles = [migrated.role(context) for context in CONTEXTS]
    admin = create_engine(migrated.admin_url)
    try:
        with admin.connect() as conn:
            rows = conn.execute(text(
                "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, "
                "rolinherit, rolreplication, rolbypassrls FROM pg_roles "
                "WHERE rolname = ANY(:r) ORDER BY 1"), {"r": roles}).all()
            assert [tuple(row) for row in rows] == [
                (role, True, False, False, False, False, False, False) for role in sorted(roles)]
            memberships = conn.execute(text(
                "SELECT count(*) FROM pg_auth_members m JOIN pg_roles a ON a.oid = m.member "
                "JOIN pg_roles b ON b.oid = m.roleid "
                "WHERE a.rolname = ANY(:r) OR b.rolname = ANY(:r)"), {"r": roles}).scalar_one()
            assert memberships == 0
            owners: dict[str, str] = dict(conn.execute(text(
                "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
                "WHERE nspname = ANY(:c)"), {"c": list(CONTEXTS)}).all())
            assert owners == {context: migrated.role(context) for context in CONTEXTS}
            # Every table (and the per-schema alembic_version) is its context role's.
            tables = conn.execute(text(
                "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ANY(:c) AND c.relkind = 'r'"),
                {"c": list(CONTEXTS)}).all()
            assert {(schema, "alembic_version") for schema in CONTEXTS} <= {
                (schema, table) for schema, table, _ in tables}
            assert all(owner == migrated.role(schema) for schema, _, owner in tables)
            # No role but a context's own may use its schema; PUBLIC nothing on the database.
            for context in CONTEXTS:
                for role in roles:
                    usable = conn.execute(text(
                        "SELECT has_schema_privilege(:r, :s, 'USAGE')"),
                        {"r": role, "s": context}).scalar_one()
                    assert usable is (role == migrated.role(context))
            public_acl = conn.execute(text(
                "SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a "
                "WHERE d.datname = :d AND a.grantee = 0"), {"d": migrated.database}).scalar_one()
            assert public_acl == 0
    finally:
        admin.dispose()


@needs_pg
def test_migrations_reference_no_other_context() -> None:
    """No foreign key or schema-qualified name leaves a context (they could not be migrated by
    the context's own role, and they would tie two contexts' data together)."""
    for context in CONTEXTS:
        metadata = migrations.context_metadata(context)
        for table in metadata.tables.values():
            assert table.schema is None
            for key in table.foreign_keys:
                assert key.column.table.metadata is metadata, (context, key.target_fullname)
    # The versions' sources name no schema either.
    root = Path(migrations.__file__).parent
    for context in CONTEXTS:
        for version in (root / context / "migrations" / "versions").glob("*.py"):
            source = version.read_text(encoding="utf-8")
            assert "schema=None" in source or "schema=" not in source, version
            for other in CONTEXTS:
                assert f'"{other}.' not in source and f"'{other}." not in source, (version, other)


# --- the password file -----------------------------------------------------------------------


def _write_server_file(conn: object, path: str, content: str) -> None:
    oid = conn.execute(text("SELECT lo_from_bytea(0, convert_to(:c, 'UTF8'))"),  # type: ignore[attr-defined]
                       {"c": content}).scalar_one()
    conn.execute(text("SELECT lo_export(:o, :p)"), {"o": oid, "p": path})  # type: ignore[attr-defined]
    conn.execute(text("SELECT lo_unlink(:o)"), {"o": oid})  # type: ignore[attr-defined]


@contextmanager
def _passwords_required(provisioned: Provisioned) -> Iterator[None]:
    """The test cluster trusts every local connection; make it ask the context roles (and
    only them) for their SCRAM password, for the duration."""
    admin = _admin()
    conn = admin.connect()
    try:
        hba = conn.execute(text("SHOW hba_file")).scalar_one()
        original = conn.execute(text("SELECT pg_read_file(:f)"), {"f": hba}).scalar_one()
        roles = ",".join(provisioned.role(context) for context in CONTEXTS)
        rules = "".join(f"{kind} all {roles} {where} scram-sha-256\n" for kind, where in (
            ("host", "127.0.0.1/32"), ("host", "::1/128"), ("local", "")))
        _write_server_file(conn, hba, rules + original)
    except Exception as exc:  # an external cluster: no superuser file access
        conn.close()
        admin.dispose()
        pytest.skip(f"cannot make the test cluster ask for passwords: {exc}")
    try:
        conn.execute(text("SELECT pg_reload_conf()"))
        url = make_url(provisioned.url("auth"))
        wrong = psycopg.conninfo.make_conninfo(host=url.host, port=url.port,
                                               dbname=url.database, user=url.username,
                                               password="wrong", passfile="/nonexistent")
        for _ in range(100):  # the reload is asynchronous
            try:
                psycopg.connect(wrong).close()
            except psycopg.OperationalError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("pg_hba.conf reload did not take effect")
        yield
    finally:
        _write_server_file(conn, hba, original)
        conn.execute(text("SELECT pg_reload_conf()"))
        conn.close()
        admin.dispose()


@needs_pg
def test_each_context_logs_in_with_its_password_from_the_password_file(
        provisioned: Provisioned, tmp_path: Path) -> None:
    assert provisioned.credentials.stat().st_mode & 0o777 == 0o600
    assert "?passfile=" in provisioned.template
    passwords = read_passwords(provisioned.credentials, provisioned.database)
    assert set(passwords) == {provisioned.role(context) for context in CONTEXTS}
    assert len(set(passwords.values())) == len(CONTEXTS)
    with _passwords_required(provisioned):
        # The services' way: SQLAlchemy, the URL template, libpq reading the password file.
        databases = _production(provisioned, tmp_path)
        try:
            databases.check_production_roles()
            migrations.upgrade(databases)
        finally:
            databases.dispose()
        # Re-running provision keeps every password (the file is unchanged and still works).
        before = provisioned.credentials.read_text()
        again = provision(provisioned.admin_url, provisioned.credentials,
                          prefix=provisioned.prefix)
        assert again.created == [] and again.passwords_set == []
        assert read_passwords(provisioned.credentials, provisioned.database) == passwords
        with _connect_as(provisioned, "registry") as conn:
            conn.execute("SELECT 1")
        # --rotate-passwords: new ones, and the old ones stop working.
        kept = tmp_path / "old-pgpass"
        kept.write_text(before)
        kept.chmod(0o600)
        rotated = provision(provisioned.admin_url, provisioned.credentials,
                            prefix=provisioned.prefix, rotate_passwords=True)
        assert sorted(rotated.passwords_set) == sorted(passwords)
        new = read_passwords(provisioned.credentials, provisioned.database)
        assert all(new[role] != passwords[role] for role in passwords)
        with _connect_as(provisioned, "registry") as conn:
            conn.execute("SELECT 1")
        old = provisioned.template.replace(str(provisioned.credentials.resolve()), str(kept))
        url = make_url(old.replace("{context}", "registry"))
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host=url.host, port=url.port, dbname=url.database,
                            user=url.username, passfile=str(kept)).close()


@needs_pg
def test_provision_refuses_to_lose_a_password_it_cannot_find(
        provisioned: Provisioned, tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="--rotate-passwords"):
        provision(provisioned.admin_url, tmp_path / "elsewhere" / "pgpass",
                  prefix=provisioned.prefix)
    assert not (tmp_path / "elsewhere" / "pgpass").exists()


# --- production refuses roles that do not isolate --------------------------------------------


def test_production_refuses_a_url_without_the_context_placeholder(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=tmp_path / "keys",
                        database_url="postgresql+psycopg://mynumber@127.0.0.1:1/mynumber")
    databases = Databases(settings)
    with pytest.raises(DatabaseRoleError, match=r"no \{context\} placeholder.*mynumber db "
                                                r"provision"):
        databases.check_production_roles()
    with pytest.raises(DatabaseRoleError, match="mynumber db provision"):
        migrations.upgrade(databases)
    # The embedded mode keeps one URL for every context (the test suite, the benchmarks).
    embedded = Databases(settings.model_copy(update={"mode": Mode.EMBEDDED}))
    embedded.check_production_roles()
    assert embedded.url_for("registry") == embedded.url_for("portal")
    placeholder = Databases(settings.model_copy(update={
        "database_url": "postgresql+psycopg://mynumber_{context}@db/mynumber?passfile=/p"}))
    placeholder.check_production_url()
    assert placeholder.url_for("jpki") == "postgresql+psycopg://mynumber_jpki@db/mynumber?passfile=/p"


def test_production_refuses_sqlite(tmp_path: Path) -> None:
    databases = Databases(Settings(mode=Mode.PRODUCTION, data_dir=tmp_path,
                                   key_dir=tmp_path / "keys"))
    with pytest.raises(DatabaseRoleError, match="PostgreSQL"):
        databases.check_production_roles()


@needs_pg
def test_production_refuses_a_role_with_createrole_or_a_membership(
        migrated: Provisioned, tmp_path: Path) -> None:
    portal, registry = migrated.role("portal"), migrated.role("registry")
    admin = _admin(migrated.admin_url)

    def refused(match: str) -> None:
        databases = _production(migrated, tmp_path)
        try:
            with pytest.raises(DatabaseRoleError, match=match) as refusal:
                databases.check_production_roles()
            assert "mynumber db provision" in str(refusal.value)
            # The engine itself refuses its first connection too, whoever uses it.
            with pytest.raises(DatabaseRoleError, match=match):
                databases.engine("portal").connect()
        finally:
            databases.dispose()

    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER ROLE "{portal}" CREATEROLE'))
        refused("allowed CREATEROLE")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER ROLE "{portal}" NOCREATEROLE CREATEDB'))
        refused("allowed CREATEDB")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER ROLE "{portal}" NOCREATEDB'))
            conn.execute(text(f'GRANT "{registry}" TO "{portal}"'))
        refused(f"is a member of {registry}")
        with admin.connect() as conn:
            conn.execute(text(f'REVOKE "{registry}" FROM "{portal}"'))
            conn.execute(text(f'GRANT USAGE ON SCHEMA registry TO "{portal}"'))
        refused("can use the schema\\(s\\) of other contexts: registry")
        # Provisioning again puts it right (and keeps the password).
        with admin.connect() as conn:
            conn.execute(text(f'ALTER ROLE "{portal}" CREATEROLE'))
            conn.execute(text(f'GRANT "{registry}" TO "{portal}"'))
        report = provision(migrated.admin_url, migrated.credentials, prefix=migrated.prefix)
        assert report.passwords_set == []
        assert any(f"membership of {portal} in {registry}" in c for c in report.corrected)
        databases = _production(migrated, tmp_path)
        try:
            databases.check_production_roles()
        finally:
            databases.dispose()
    finally:
        admin.dispose()


@needs_pg
def test_production_refuses_a_superuser_even_behind_a_placeholder(
        migrated: Provisioned, tmp_path: Path) -> None:
    sneaky = make_url(migrated.admin_url).render_as_string(hide_password=False)
    databases = Databases(Settings(mode=Mode.PRODUCTION, data_dir=tmp_path,
                                   key_dir=tmp_path / "keys",
                                   database_url=sneaky + "?application_name={context}"))
    try:
        with pytest.raises(DatabaseRoleError, match="is a superuser"):
            databases.check_production_roles()
    finally:
        databases.dispose()


@needs_pg
def test_provision_turns_the_old_shared_role_layout_into_isolated_roles(
        tmp_path: Path) -> None:
    """A database prepared the old way (one login role granted a NOLOGIN role per context)
    is corrected: the context roles become login roles, the grants to the shared role go."""
    with _throwaway_database(tmp_path) as (name, prefix, admin_url):
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        shared = f"{prefix}shared"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE ROLE "{shared}" LOGIN CREATEROLE'))
                for context in CONTEXTS:
                    conn.execute(text(f'CREATE ROLE "{prefix}{context}" NOLOGIN'))
                    conn.execute(text(f'GRANT "{prefix}{context}" TO "{shared}"'))
                    conn.execute(text(
                        f'CREATE SCHEMA "{context}" AUTHORIZATION "{prefix}{context}"'))
            report = provision(admin_url, tmp_path / "pgpass", prefix=prefix)
            assert report.created == []
            assert sorted(report.passwords_set) == sorted(f"{prefix}{c}" for c in CONTEXTS)
            with admin.connect() as conn:
                left = conn.execute(text(
                    "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                    "WHERE r.rolname = :s"), {"s": shared}).scalar_one()
                assert left == 0
            databases = Databases(Settings(mode=Mode.PRODUCTION, data_dir=tmp_path / "d",
                                           key_dir=tmp_path / "k",
                                           database_url=report.url_template))
            try:
                migrations.upgrade(databases)
            finally:
                databases.dispose()
        finally:
            admin.dispose()
            with _admin().connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'DROP ROLE IF EXISTS "{shared}"'))


# --- the command line ------------------------------------------------------------------------


@needs_pg
def test_cli_provision_then_upgrade_in_production(tmp_path: Path) -> None:
    with _throwaway_database(tmp_path) as (_name, prefix, admin_url):
        credentials = tmp_path / "etc" / "pgpass"
        done = runner.invoke(app, ["db", "provision", "--credentials", str(credentials),
                                   "--role-prefix", prefix],
                             env={"MYNUMBER_ADMIN_DATABASE_URL": admin_url})
        assert done.exit_code == 0, done.output
        template = next(line.split("=", 1)[1].strip().strip("'")
                        for line in done.output.splitlines()
                        if "MYNUMBER_DATABASE_URL=" in line)
        assert f"{prefix}{{context}}" in template and "passfile=" in template
        assert "password" not in template.lower().replace("passfile", "")
        env = {"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
               "MYNUMBER_DATA_DIR": str(tmp_path / "data"), "MYNUMBER_DATABASE_URL": template,
               "MYNUMBER_JPKI_KEY_PASSPHRASE": "synthetic production passphrase 0123"}
        keys = runner.invoke(app, ["keys", "init", "--production"], env=env)
        assert keys.exit_code == 0, keys.output
        upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
        assert upgraded.exit_code == 0, upgraded.output
        assert "databases up to date (PostgreSQL)" in upgraded.output
        # Again: nothing to create, nothing needs CREATEROLE.
        again = runner.invoke(app, ["db", "upgrade"], env=env)
        assert again.exit_code == 0, again.output
        # The same in production with the one shared URL: refused, naming provision.
        shared = runner.invoke(app, ["db", "upgrade"],
                               env={**env, "MYNUMBER_DATABASE_URL": admin_url})
        assert shared.exit_code == 1
        assert "mynumber db provision" in shared.output
        assert "Traceback" not in shared.output


@needs_pg
def test_cli_upgrade_names_the_databases_refusal(tmp_path: Path) -> None:
    """A schema the context role does not own: the database's own message and what to do,
    not a bare ProgrammingError."""
    with _throwaway_database(tmp_path) as (_name, prefix, admin_url):
        report = provision(admin_url, tmp_path / "pgpass", prefix=prefix)
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text("ALTER SCHEMA card OWNER TO postgres"))
                conn.execute(text(f'GRANT USAGE ON SCHEMA card TO "{prefix}card"'))
        finally:
            admin.dispose()
        env = {"MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
               "MYNUMBER_DATA_DIR": str(tmp_path / "data"),
               "MYNUMBER_DATABASE_URL": report.url_template}
        result = runner.invoke(app, ["db", "upgrade"], env=env)
        assert result.exit_code == 1
        output = " ".join(result.output.split())
        assert "permission denied for schema card" in output
        assert "mynumber db provision" in output
        assert "ProgrammingError" not in output and "Traceback" not in output
