"""`mynumber staff unlock`: ends a login throttle, with an audit record."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from typer.testing import CliRunner

from mynumber.app import Container
from mynumber.auth import models as m
from mynumber.auth.interfaces import StaffRole
from mynumber.cli import app
from tests.conftest import SHINJUKU, STAFF_PASSWORD

runner = CliRunner()


def test_staff_unlock(container: Container) -> None:
    settings = container.settings
    env = {"MYNUMBER_DATA_DIR": str(settings.data_dir),
           "MYNUMBER_KEY_DIR": str(settings.keys_path)}
    if settings.database_url:
        env["MYNUMBER_DATABASE_URL"] = settings.database_url
    container.staff_auth.create_staff("clerk", "clerk", SHINJUKU, StaffRole.CLERK,
                                      STAFF_PASSWORD)
    with container.databases.unit_of_work("auth") as session:
        session.execute(update(m.Staff).values(
            failed_logins=9, locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)))

    result = runner.invoke(app, ["staff", "unlock", "clerk"], env=env)
    assert result.exit_code == 0, result.output
    with container.databases.unit_of_work("auth") as session:
        staff = session.scalars(select(m.Staff)).one()
        assert (staff.failed_logins, staff.locked_until) == (0, None)
        (event,) = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == "auth:staff:unlock")).all()
        assert event.actor.startswith("cli:staff-unlock:")

    unknown = runner.invoke(app, ["staff", "unlock", "nobody"], env=env)
    assert unknown.exit_code == 1
    assert "staff_not_found" in unknown.output
