"""The embedded mode's virtual card reader (:class:`CardReader`): it drives the virtual cards
whose chips this process holds in the card store (test cards issued at the counter), so a
browser can log in to the portal without a physical reader.

The chip does what a real one does: the user-authentication PIN is checked on the chip, a
wrong PIN counts down (and is audited through the card service's ``on_failed_pin``), three
wrong PINs lock it. Each attempt loads, checks and saves the chip under its lock, so the counter
persists and parallel attempts are all counted. Outside the
embedded mode there is no reader: every call raises :class:`CardReaderUnavailable`."""

from __future__ import annotations

from typing import Any

from mynumber.card.chip import CardError, NoSuchKey, PinFormatError, PinLocked, WrongPin
from mynumber.card.interfaces import CardNotFound
from mynumber.errors import Forbidden, InvalidInput, NotFound
from mynumber.portal.interfaces import CardReaderUnavailable
from mynumber.settings import Mode

MAX_CARDS = 200  # the reader lists at most this many chips
CHALLENGE_BYTES = 64  # longest challenge the reader signs


class ReaderCardNotFound(NotFound):
    code = "reader_card_not_found"
    title = "No such card in the reader"


class ReaderWrongPin(InvalidInput):
    """The PIN was wrong; ``remaining`` tries are left (0: now locked)."""

    code = "reader_wrong_pin"
    title = "Wrong PIN"

    def __init__(self, remaining: int) -> None:
        super().__init__(f"wrong PIN; {remaining} tries remaining", field="pin")
        self.remaining = remaining


class ReaderPinLocked(Forbidden):
    code = "reader_pin_locked"
    title = "PIN locked"


class ReaderPinFormat(InvalidInput):
    code = "reader_pin_format"
    title = "The PIN must be 4 digits"


class PortalCardReader:
    """A :class:`~mynumber.portal.interfaces.CardReader` on the container's card service."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def check_available(self) -> None:
        """Raise :class:`CardReaderUnavailable` outside the embedded mode."""
        if self.container.settings.mode is not Mode.EMBEDDED:
            raise CardReaderUnavailable("the virtual card reader exists only in embedded mode")

    def cards(self) -> list[str]:
        """Card ids whose chips (with a user-authentication certificate) are held here."""
        self.check_available()
        store = self.container.card.store
        directory = store.directory
        if not directory.is_dir():
            return []
        found: list[str] = []
        for path in sorted(directory.glob("*.json")):
            card_id = path.stem
            try:
                chip = store.load(card_id)
                chip.certificate("auth")
            except (CardError, CardNotFound):
                continue
            found.append(card_id)
            if len(found) >= MAX_CARDS:
                break
        return found

    def sign_challenge(self, card_id: str, pin: str, challenge: bytes) -> tuple[bytes, str]:
        """(signature, auth certificate PEM) after the PIN; a wrong PIN counts down."""
        self.check_available()
        if not challenge or len(challenge) > CHALLENGE_BYTES:
            raise InvalidInput("the challenge is missing or too long", field="challenge")
        try:
            # Load, PIN check and save under the chip's lock (CardStore.session): parallel
            # wrong PINs are each counted, so three of them lock the PIN whatever the timing.
            with self.container.card.chip_session(card_id) as chip:
                try:
                    certificate = chip.certificate("auth").decode("ascii")
                except CardError:
                    raise ReaderCardNotFound("no card with this id in the reader",
                                             field="card_id") from None
                signature = chip.sign("auth", pin, challenge)
        except WrongPin as exc:
            if exc.remaining == 0:
                raise ReaderPinLocked(
                    "the PIN is now locked; have it reset at the municipal counter",
                    field="pin") from None
            raise ReaderWrongPin(exc.remaining) from None
        except PinLocked:
            raise ReaderPinLocked("the PIN is locked; have it reset at the municipal counter",
                                  field="pin") from None
        except PinFormatError:
            raise ReaderPinFormat("the PIN is 4 digits (0-9)", field="pin") from None
        except NoSuchKey:
            raise ReaderCardNotFound("the card holds no authentication key",
                                     field="card_id") from None
        except (CardNotFound, CardError):
            raise ReaderCardNotFound("no card with this id in the reader",
                                     field="card_id") from None
        return signature, certificate
