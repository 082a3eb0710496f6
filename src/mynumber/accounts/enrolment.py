"""Enrolling earlier registrations with デジタル庁 (``mynumber accounts enrol-existing``).

A registration is enrolled with デジタル庁 (its own 機関別符号 for the registrant, so agencies'
look-ups find the account) when its ``accounts.registration.registered`` event is delivered.
A registration made before that event existed (a database from before it) was never
enrolled, and look-ups for it answer "not held". This pass enrols every registration through
the same idempotent ``AccountProvision.enrol``: a person デジタル庁 knows already is looked up,
not enrolled again (no second 取得番号), so the pass may run any number of times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from mynumber.accounts import models as m
from mynumber.accounts.interfaces import AccountProvision
from mynumber.db import Databases
from mynumber.registry.interfaces import ResidentNotFound

log = logging.getLogger("mynumber.accounts")

#: The actor the registry records for each 取得番号 this pass has issued.
ACTOR = "accounts:enrol-existing"


@dataclass
class EnrolmentReport:
    registrations: int = 0
    #: デジタル庁 holds a code for the registrant now (newly enrolled or known already).
    enrolled: int = 0
    #: No longer residents (died, moved away): nothing to look up for them.
    passed_over: list[int] = field(default_factory=list)


def registered_resident_ids(databases: Databases) -> list[int]:
    with databases.unit_of_work(m.CONTEXT) as session:
        return [int(rid) for rid in session.scalars(
            select(m.Registration.resident_id).order_by(m.Registration.resident_id))]


def enrol_existing(databases: Databases, provision: AccountProvision,
                   actor: str = ACTOR) -> EnrolmentReport:
    report = EnrolmentReport()
    for rid in registered_resident_ids(databases):
        report.registrations += 1
        try:
            provision.enrol(rid, actor)
        except ResidentNotFound:
            log.warning("accounts: resident %s is no longer a resident; not enrolled with "
                        "デジタル庁", rid)
            report.passed_over.append(rid)
            continue
        report.enrolled += 1
    return report
