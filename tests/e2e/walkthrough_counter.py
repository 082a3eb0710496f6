"""The counter's part of the production walk-through (tests/e2e/test_production_walkthrough.py),
run as its own process with the core host's production settings (MYNUMBER_* from the
environment, keys on the SoftHSM2 token).

A clerk (created and signed in with a TOTP code as `mynumber staff create` would) registers a
birth, reveals the number under audit, takes the card application, verifies the person and
issues the card: the calls the counter pages (/counter/…) make. The virtual card is written
to ARGV[1]/card.json; ARGV[1]/counter.json gets the resident id. Nothing is printed that
carries the number. The number goes on standard output's last line only when ARGV[2] is
``--number`` (the test then enrols the person through `mynumber agencies enrol`, which reads
it from standard input, as an agency clerk would type it)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sys
from pathlib import Path

from mynumber.app import build_container
from mynumber.auth.interfaces import StaffRole
from mynumber.auth.services import current_totp
from mynumber.card.interfaces import IdentityCheck, IssuedPins
from mynumber.registry.interfaces import NewResident, Sex

PINS = IssuedPins("WALK2026", "1234", "5678", "2468")


def main(out: Path, reveal: bool) -> None:
    container = build_container(role="core")
    try:
        password = secrets.token_urlsafe(18)
        container.staff_auth.create_staff("walk-clerk", "新宿区 窓口職員", "131041",
                                          StaffRole.CLERK, password)
        token = container.staff_auth.login(
            "walk-clerk", password, current_totp(container.databases, "walk-clerk"))
        clerk = container.staff_auth.authenticate(token)
        born = dt.date(1990, 4, 1)
        resident = container.registry.register_birth(clerk, NewResident(
            municipality_code="131041", family_name="山田", given_name="花子",
            family_name_kana="ヤマダ", given_name_kana="ハナコ", birth_date=born,
            sex=Sex.FEMALE, address="東京都新宿区西新宿二丁目8番1号", postal_code="1638001",
        ), born)
        number = container.registry.reveal_number(clerk, resident.id, "カード交付 (walk-through)")
        application = container.card.apply(clerk, resident.id)
        _record, chip = container.card.issue(
            clerk, application.application_id,
            IdentityCheck(number, "notification_letter", ("drivers_license",)), PINS)
        out.mkdir(parents=True, exist_ok=True)
        chip.save(out / "card.json")
        (out / "auth-cert.pem").write_bytes(chip.certificate("auth"))
        (out / "counter.json").write_text(json.dumps({"resident_id": resident.id}))
    finally:
        container.close()
    if reveal:
        print(number)


if __name__ == "__main__":
    main(Path(sys.argv[1]), len(sys.argv) > 2 and sys.argv[2] == "--number")
