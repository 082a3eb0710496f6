"""`mynumber db provision`: the database administrator's one-time step that gives every context
its own PostgreSQL LOGIN role and schema.

For each context in :data:`mynumber.db.CONTEXTS`:

* a LOGIN role ``<prefix><context>`` (``mynumber_registry``, …) with NOSUPERUSER NOCREATEDB
  NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS, a member of no role, and no other role
  (but the administrator running this) a member of it;
* the schema ``<context>``, owned by that role, with no privilege for anyone else (PUBLIC
  included) -- so no context role can use another context's schema;
* CONNECT on the database for the context roles only (nothing for PUBLIC: no TEMP, and no
  CREATE or USAGE on the ``public`` schema), and ``search_path`` set to the role's schema.

The passwords are random, sent to the server as SCRAM verifiers (never in clear text, so the
server's log cannot show them), and written to a libpq password file (``.pgpass`` format, mode
0600) that libpq reads natively: ``MYNUMBER_DATABASE_URL=postgresql+psycopg://mynumber_{context}
@HOST/DB?passfile=FILE``. Re-running it changes nothing that is right already and keeps every
password, unless ``rotate_passwords`` is asked for.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

from mynumber.db import CONTEXT_PLACEHOLDER, CONTEXTS, ROLE_PREFIX, role_name
from mynumber.keys.files import write_owner_only

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ProvisionError(RuntimeError):
    """Provisioning cannot go on; the message says why and what to do."""


@dataclass
class ProvisionReport:
    database: str
    credentials: Path
    url_template: str
    created: list[str] = field(default_factory=list)
    passwords_set: list[str] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)


def _ident(name: str) -> str:
    if not _NAME.match(name):
        raise ProvisionError(f"{name!r} is not a plain lower-case SQL name")
    return f'"{name}"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- the libpq password file -----------------------------------------------------------------


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _pgpass_split(line: str) -> list[str]:
    fields, current, escaped = [], "", False
    for char in line:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    return fields


def read_passwords(path: Path, database: str) -> dict[str, str]:
    """The passwords a libpq password file holds for ``database``, by role name."""
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = _pgpass_split(line)
        if len(parts) == 5 and parts[2] in (database, "*"):
            found.setdefault(parts[3], parts[4])
    return found


def _write_pgpass(path: Path, database: str, passwords: dict[str, str]) -> None:
    """Rewrite ``path``: our roles' lines for ``database`` replaced, any other line kept."""
    kept: list[str] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = _pgpass_split(line)
            ours = (len(parts) == 5 and parts[2] == database and parts[3] in passwords)
            if not ours and not line.startswith("# mynumber db provision"):
                kept.append(line)
    lines = [f"# mynumber db provision: one login role per context of database {database}"]
    lines += [f"*:*:{_pgpass_field(database)}:{_pgpass_field(role)}:{_pgpass_field(password)}"
              for role, password in passwords.items()]
    write_owner_only(path, ("\n".join(lines + kept) + "\n").encode("utf-8"), overwrite=True)


def url_template(admin_url: str, prefix: str, credentials: Path) -> str:
    """``MYNUMBER_DATABASE_URL`` for the provisioned roles: the admin URL's host, port and
    database, the user ``<prefix>{context}``, no password, and ``passfile``."""
    url = make_url(admin_url).set(username="PLACEHOLDERUSER", password=None)
    rendered = url.render_as_string(hide_password=False).replace(
        "PLACEHOLDERUSER", prefix + CONTEXT_PLACEHOLDER, 1)
    separator = "&" if "?" in rendered else "?"
    return f"{rendered}{separator}passfile={quote(str(credentials.resolve()), safe='/')}"


# --- the administrator's SQL -----------------------------------------------------------------


def _scram(conn: Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed by libpq on this machine."""
    pgconn = conn.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
    return bytes(pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256")).decode()


def _roles(conn: Connection, names: list[str]) -> dict[str, Any]:
    rows = conn.execute(text(
        "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(:names)"),
        {"names": names}).all()
    return {row[0]: row for row in rows}


def _revoke_memberships(conn: Connection, role: str, admin: str, pg16: bool,
                        report: ProvisionReport) -> None:
    """No membership of the role in any role, and no role (but the administrator) in it."""
    rows = conn.execute(text(
        "SELECT g.rolname, m.rolname, gr.rolname FROM pg_auth_members a "
        "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
        "LEFT JOIN pg_roles gr ON gr.oid = a.grantor "
        "WHERE (m.rolname = :role OR g.rolname = :role) AND m.rolname <> :admin"),
        {"role": role, "admin": admin}).all()
    for group, member, grantor in rows:
        by = f" GRANTED BY {_ident(grantor)}" if pg16 and grantor else ""
        conn.execute(text(f"REVOKE {_ident(group)} FROM {_ident(member)}{by}"))
        report.corrected.append(f"revoked membership of {member} in {group}")


def _isolate_schema(conn: Connection, schema: str, role: str,
                    report: ProvisionReport) -> None:
    owner = conn.execute(text(
        "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = :s"),
        {"s": schema}).scalar_one_or_none()
    if owner is None:
        conn.execute(text(f"CREATE SCHEMA {_ident(schema)} AUTHORIZATION {_ident(role)}"))
    elif owner != role:
        conn.execute(text(f"ALTER SCHEMA {_ident(schema)} OWNER TO {_ident(role)}"))
        report.corrected.append(f"schema {schema} now owned by {role} (was {owner})")
    foreign = conn.execute(text(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = :r) "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1"),
        {"s": schema, "r": role}).all()
    if foreign:
        names = ", ".join(f"{schema}.{name} (owner {owner})" for name, owner in foreign)
        raise ProvisionError(
            f"tables in schema {schema} are owned by another role: {names}; make {role} "
            f"their owner (ALTER TABLE … OWNER TO {role}) and run provision again")
    # Nobody but the owner may use the schema: PUBLIC and every other grantee lose theirs.
    grantees = conn.execute(text(
        "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN NULL "
        "ELSE pg_get_userbyid(a.grantee)::text END "
        "FROM pg_namespace n, aclexplode(n.nspacl) a "
        "WHERE n.nspname = :s AND a.grantee <> n.nspowner"), {"s": schema}).scalars().all()
    for grantee in grantees:
        conn.execute(text(f"REVOKE ALL ON SCHEMA {_ident(schema)} FROM "
                          + ("PUBLIC" if grantee is None else _ident(grantee))))
        if grantee is not None:
            report.corrected.append(f"revoked {grantee}'s privileges on schema {schema}")


def provision(admin_url: str, credentials: Path, *, prefix: str = ROLE_PREFIX,
              rotate_passwords: bool = False,
              contexts: tuple[str, ...] = CONTEXTS) -> ProvisionReport:
    """Create or correct every context's login role and schema (idempotent; see the module)."""
    if not admin_url.startswith("postgresql"):
        raise ProvisionError("--admin-url must be a PostgreSQL URL (postgresql+psycopg://…)")
    if CONTEXT_PLACEHOLDER in admin_url:
        raise ProvisionError("--admin-url is the administrator's own URL, without {context}")
    if not _NAME.match(prefix + "x"):
        raise ProvisionError(f"--role-prefix {prefix!r}: use lower-case letters, digits and _")
    database = make_url(admin_url).database
    if not database:
        raise ProvisionError("--admin-url must name the application's database")
    roles = [role_name(context, prefix) for context in contexts]
    known = read_passwords(credentials, database)
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    report = ProvisionReport(database, credentials.resolve(),
                             url_template(admin_url, prefix, credentials))
    passwords: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            admin, superuser, createrole, pg16 = conn.execute(text(
                "SELECT current_user, rolsuper, rolcreaterole, "
                "current_setting('server_version_num')::int >= 160000 "
                "FROM pg_roles WHERE rolname = current_user")).one()
            if not (superuser or createrole):
                raise ProvisionError(
                    f"{admin} may not create roles: run provision with a superuser (or the "
                    "administrator role with CREATEROLE that owns the database)")
            if admin in roles:
                raise ProvisionError(f"--admin-url logs in as {admin}, a context role: use "
                                     "the administrator's URL")
            existing = _roles(conn, roles)
            attributes = ("NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
                          "NOBYPASSRLS")
            for context, role in zip(contexts, roles, strict=True):
                row = existing.get(role)
                password = known.get(role)
                if row is not None and row[1] and password is None and not rotate_passwords:
                    raise ProvisionError(
                        f"role {role} exists and {credentials} holds no password for it: "
                        "give the password file an earlier provision wrote, or pass "
                        "--rotate-passwords (then update the file on every host)")
                new_password = row is None or rotate_passwords or password is None
                if new_password:
                    password = secrets.token_urlsafe(32)
                assert password is not None
                passwords[role] = password
                verifier = _literal(_scram(conn, role, password))
                # (exec_driver_sql: a verifier holds ':', which text() would take for a bind)
                if row is None:
                    conn.exec_driver_sql(
                        f"CREATE ROLE {_ident(role)} WITH LOGIN {attributes} "
                        f"PASSWORD {verifier}")
                    report.created.append(role)
                else:
                    conn.execute(text(f"ALTER ROLE {_ident(role)} WITH LOGIN {attributes}"))
                    if new_password:
                        conn.exec_driver_sql(f"ALTER ROLE {_ident(role)} PASSWORD {verifier}")
                if new_password:
                    report.passwords_set.append(role)
                _revoke_memberships(conn, role, admin, pg16, report)
                _isolate_schema(conn, context, role, report)
                conn.execute(text(f"ALTER ROLE {_ident(role)} IN DATABASE {_ident(database)} "
                                  f"SET search_path = {_ident(context)}"))
            # The database: CONNECT for the context roles only; no TEMP, and nothing in
            # the public schema, for anyone else.
            conn.execute(text(f"REVOKE ALL ON DATABASE {_ident(database)} FROM PUBLIC"))
            conn.execute(text("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
            for role in roles:
                conn.execute(text(f"GRANT CONNECT ON DATABASE {_ident(database)} "
                                  f"TO {_ident(role)}"))
                conn.execute(text(
                    f"REVOKE CREATE, TEMPORARY ON DATABASE {_ident(database)} "
                    f"FROM {_ident(role)}"))
    finally:
        engine.dispose()
        # Even when a later step failed: a password set above is the role's password now.
        if passwords:
            _write_pgpass(credentials, database, passwords)
    return report
