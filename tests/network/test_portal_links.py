"""The links the portal needs, each without the 個人番号: a 取得番号 for a resident identified by
JPKI or at the counter, enrolment with it, and routing an agency's お知らせ to the portal's code."""

from __future__ import annotations

import datetime as dt

import pytest

from mynumber.agencies.interfaces import PersonNotEnrolled
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.interfaces import IdentityCheck, IssuedPins
from mynumber.jpki.interfaces import CertificateKind, RevocationReason, VerificationFailed
from mynumber.network.interfaces import AgencyStatus, NotPermitted
from mynumber.registry.interfaces import AcquisitionNumberInvalid, ResidentNotFound
from tests.conftest import new_resident

PORTAL = "mynaportal"
CITY = "municipality-131041"
PINS = IssuedPins("ABC123", "1234", "5678", "2468")


def _resident(container: Container, clerk: StaffPrincipal) -> tuple[int, str]:
    details = new_resident()
    resident = container.registry.register_birth(clerk, details, details.birth_date)
    return resident.id, container.registry.reveal_number(clerk, resident.id, "test")


def test_acquisition_for_resident_enrols_once_and_finds_an_existing_enrolment(
    container: Container, clerk: StaffPrincipal,
) -> None:
    rid, number = _resident(container, clerk)
    container.agencies.ensure_registered(PORTAL)
    grant = container.registry.issue_acquisition_number_for_resident(PORTAL, rid, "staff:1")
    assert grant.municipality_code == "131041"
    assert grant.acquisition_number != number
    used = container.agencies.enrol_with_acquisition_number(PORTAL, "P000000000001",
                                                           grant.acquisition_number)
    assert used == "P000000000001"
    # one use only
    with pytest.raises(AcquisitionNumberInvalid):
        container.agencies.enrol_with_acquisition_number(PORTAL, "P000000000002",
                                                         grant.acquisition_number)
    # A second link of the same person lands on the address number already in use.
    again = container.registry.issue_acquisition_number_for_resident(PORTAL, rid, "staff:1")
    assert container.agencies.enrol_with_acquisition_number(
        PORTAL, "P000000000003", again.acquisition_number) == "P000000000001"
    code = container.agencies.agency_code(PORTAL, "P000000000001")
    assert container.agencies.address_number_for_code(PORTAL, code) == "P000000000001"
    with pytest.raises(PersonNotEnrolled):
        container.agencies.address_number_for_code(CITY, code)  # another agency's code
    # The same person enrolled by number at another agency gets an unrelated code.
    container.agencies.ensure_registered(CITY)
    assert container.agencies.enrol_person(CITY, "C-1", number) != code


def test_acquisition_refused_for_a_former_resident(container: Container,
                                                   clerk: StaffPrincipal) -> None:
    rid, _ = _resident(container, clerk)
    container.registry.register_death(clerk, rid, dt.date.today())
    with pytest.raises(ResidentNotFound):
        container.registry.issue_acquisition_number_for_resident(PORTAL, rid, "staff:1")


def test_notice_routing_maps_an_agency_code_to_the_portal_code(
    container: Container, clerk: StaffPrincipal,
) -> None:
    _, number = _resident(container, clerk)
    for agency in (PORTAL, CITY):
        container.agencies.ensure_registered(agency)
    portal_code = container.agencies.enrol_person(PORTAL, "P1", number)
    city_code = container.agencies.enrol_person(CITY, "C1", number)
    assert container.network.portal_code(CITY, city_code) == (PORTAL, portal_code)
    with pytest.raises(NotPermitted):  # a code of another agency is not the city's
        container.network.portal_code(CITY, portal_code)
    container.network.set_agency_status("test", CITY, AgencyStatus.SUSPENDED, "test")
    with pytest.raises(NotPermitted):
        container.network.portal_code(CITY, city_code)


def test_jpki_links_a_good_auth_certificate_and_the_same_holder_at_the_counter(
    container: Container, clerk: StaffPrincipal,
) -> None:
    rid, number = _resident(container, clerk)
    application = container.card.apply(clerk, rid)
    record, _ = container.card.issue(
        clerk, application.application_id,
        IdentityCheck(number, "notification_letter", ("drivers_license",)), PINS)
    assert record.auth_serial is not None and record.signing_serial is not None
    rp = container.jpki.register_relying_party("portal test", (CertificateKind.AUTH,)).id
    link = container.jpki.link_for_certificate(rp, PORTAL, record.auth_serial)
    assert link.pairwise_id == container.jpki.pairwise_id(rp, record.auth_serial)
    assert str(record.auth_serial) not in link.pairwise_id and number not in link.pairwise_id
    assert link.municipality_code == "131041"
    counter = container.jpki.link_for_resident(rp, PORTAL, rid, "staff:1")
    assert counter.pairwise_id == link.pairwise_id
    assert counter.acquisition_number != link.acquisition_number
    with pytest.raises(VerificationFailed):  # a signing certificate is not a login
        container.jpki.link_for_certificate(rp, PORTAL, record.signing_serial)
    container.jpki.revoke(record.auth_serial, RevocationReason.LOST, "test")
    with pytest.raises(VerificationFailed):
        container.jpki.link_for_certificate(rp, PORTAL, record.auth_serial)
