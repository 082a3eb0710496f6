"""The card store: chip files sealed under the key kernel, PIN counters that hold under
parallel entries (issue 10)."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import CardFileError, PinKind, VirtualCard
from mynumber.card.services import CHIP_SEALING_KEY
from mynumber.errors import DomainError
from mynumber.portal.reader import PortalCardReader, ReaderPinLocked, ReaderWrongPin
from tests.card.conftest import PINS, Holder
from tests.card.test_services import audit_tags, issue

THREADS = 20


def test_parallel_wrong_pins_are_each_counted(container: Container, clerk: StaffPrincipal,
                                             holder: Holder) -> None:
    """20 wrong PINs at once at the virtual reader against a 3-try PIN: exactly 3 are counted
    (the others meet a locked PIN), the PIN is locked, and then the right PIN is refused."""
    record, _ = issue(container, clerk, holder)
    reader = PortalCardReader(container)
    barrier = threading.Barrier(THREADS)

    def attempt(_: int) -> DomainError:
        barrier.wait()
        try:
            reader.sign_challenge(record.card_id, "0000", b"challenge")
        except (ReaderWrongPin, ReaderPinLocked) as exc:
            return exc
        raise AssertionError("a wrong PIN was accepted")

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(attempt, range(THREADS)))
    assert sorted(e.remaining for e in outcomes if isinstance(e, ReaderWrongPin)) == [1, 2]
    assert sum(isinstance(e, ReaderPinLocked) for e in outcomes) == THREADS - 2
    failed = audit_tags(container, "card:pin:failed")
    assert len(failed) == THREADS
    assert sorted(e.details["remaining"] for e in failed if not e.details["was_locked"]) \
        == [0, 1, 2]  # exactly three compared and counted
    assert container.card.open_card(record.card_id).is_locked(PinKind.USER_AUTH)
    with pytest.raises(ReaderPinLocked):
        reader.sign_challenge(record.card_id, PINS.user_auth_pin, b"challenge")


def test_chip_file_is_sealed_under_the_key_kernel(container: Container, clerk: StaffPrincipal,
                                                 holder: Holder) -> None:
    """The chip file kept its AES key beside the sealed data; now the card key is wrapped
    under the key kernel's ``card.chip_sealing`` key, which lives elsewhere."""
    record, _ = issue(container, clerk, holder)
    path = container.card.store.path(record.card_id)
    document = json.loads(path.read_text())
    assert document["card_key"]["protection"] == "storage-key"
    assert "key" not in document["card_key"]
    with pytest.raises(CardFileError):  # the file alone opens nothing
        VirtualCard.load(path)
    with pytest.raises(CardFileError):
        VirtualCard.load(path, storage_key=os.urandom(32))
    sealing_key = container.keys.symmetric_key(CHIP_SEALING_KEY)
    chip = VirtualCard.load(path, storage_key=sealing_key)
    assert chip.card_id == record.card_id
    assert not any(sealing_key.hex() in p.read_bytes().hex()
                   for p in path.parent.iterdir() if p.is_file())
    assert not str(container.settings.keys_path.resolve()).startswith(
        str(path.parent.resolve()))


def test_an_old_unsealed_chip_file_is_resealed_on_first_read(
        container: Container, clerk: StaffPrincipal, holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    store = container.card.store
    path = store.path(record.card_id)
    old = VirtualCard.load(path, storage_key=container.keys.symmetric_key(CHIP_SEALING_KEY))
    old.save(path)  # as written before issue 10: the card key in the clear
    assert json.loads(path.read_text())["card_key"]["protection"] == "none"
    chip = container.card.open_card(record.card_id)
    assert chip.remaining_tries(PinKind.USER_AUTH) == 3
    assert json.loads(path.read_text())["card_key"]["protection"] == "storage-key"
    with pytest.raises(CardFileError):  # a sealed-store reader never takes an unsealed file
        VirtualCard.load(path, storage_key=os.urandom(32))
