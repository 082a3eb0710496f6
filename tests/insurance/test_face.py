"""The embedded mode's face matcher is a deterministic stand-in, and says so."""

from __future__ import annotations

import hashlib

from mynumber.insurance.face import (
    MAX_PHOTO_BYTES,
    STAND_IN_MARKER,
    DeterministicStandInMatcher,
    stand_in_live_photo,
)
from mynumber.insurance.interfaces import FaceMatcher

CARD = b"\xff\xd8\xff\xe0 the card's photo" + bytes(range(256))


def test_the_stand_in_names_itself_as_no_face_recognition() -> None:
    matcher: FaceMatcher = DeterministicStandInMatcher()
    assert "stand-in" in matcher.name and "not face recognition" in matcher.name


def test_the_card_photo_itself_and_a_marked_live_photo_match() -> None:
    matcher = DeterministicStandInMatcher()
    assert matcher.matches(CARD, CARD)
    live = stand_in_live_photo(CARD, b" frame 1")
    assert live != CARD and matcher.matches(CARD, live)
    assert live.startswith(STAND_IN_MARKER + hashlib.sha256(CARD).hexdigest().encode())
    # Deterministic: the same answer every time.
    assert all(matcher.matches(CARD, live) for _ in range(10))


def test_anything_else_does_not_match() -> None:
    matcher = DeterministicStandInMatcher()
    other_card = CARD + b"!"
    assert not matcher.matches(CARD, b"\xff\xd8 another face")
    assert not matcher.matches(CARD, stand_in_live_photo(other_card))
    assert not matcher.matches(other_card, stand_in_live_photo(CARD))
    assert not matcher.matches(CARD, STAND_IN_MARKER)
    assert not matcher.matches(CARD, stand_in_live_photo(CARD)[:-1])
    assert not matcher.matches(b"", b"")
    assert not matcher.matches(CARD, b"")
    assert not matcher.matches(CARD, "text")  # type: ignore[arg-type]
    huge = b"\x00" * (MAX_PHOTO_BYTES + 1)
    assert not matcher.matches(huge, huge)
