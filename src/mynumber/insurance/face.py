"""The face matcher of the embedded mode: a deterministic STAND-IN, not face recognition.

A terminal that confirms eligibility by face (顔認証) compares a live photo with the photo
read from the card's chip. Real terminals do this with a certified face-recognition engine
inside the terminal; this system has none, and pretends to nothing: the
:class:`~mynumber.insurance.interfaces.FaceMatcher` protocol is the seam where one is plugged
in, and :class:`DeterministicStandInMatcher` is what the embedded mode plugs in so that the
flow can be exercised end to end.

The stand-in's rule (deterministic, documented, trivially satisfiable by anyone who knows it,
which is why production must plug in a real matcher):

- the live photo *is* the card photo (the same bytes), or
- the live photo starts with :data:`STAND_IN_MARKER` followed by the SHA-256 (hex) of the card
  photo: "another photo of the same face", as the demo terminal and the tests produce with
  :func:`stand_in_live_photo`.

Anything else, an empty photo, or a photo larger than :data:`MAX_PHOTO_BYTES` does not match.
"""

from __future__ import annotations

import hashlib
import hmac

#: What a live photo begins with when it stands for "the same face as this card photo".
STAND_IN_MARKER = b"MYNUMBER-STAND-IN-FACE:"
#: A card's photo is a small JPEG (the chip's 券面事項 holds about 2 KB); live photos from a
#: terminal's camera are larger, but never this large.
MAX_PHOTO_BYTES = 2 * 1024 * 1024


def stand_in_live_photo(card_photo: bytes, extra: bytes = b"") -> bytes:
    """A live photo the stand-in matches with ``card_photo`` (``extra`` makes it differ from
    the card photo's bytes, as a real camera's photo would)."""
    return STAND_IN_MARKER + hashlib.sha256(card_photo).hexdigest().encode() + extra


class DeterministicStandInMatcher:
    """NOT a face matcher: the embedded mode's deterministic stand-in (see the module)."""

    name = "deterministic-stand-in (not face recognition)"

    def matches(self, card_photo: bytes, live_photo: bytes) -> bool:
        if not isinstance(card_photo, bytes) or not isinstance(live_photo, bytes):
            return False
        if not card_photo or not live_photo:
            return False
        if len(card_photo) > MAX_PHOTO_BYTES or len(live_photo) > MAX_PHOTO_BYTES:
            return False
        if hmac.compare_digest(hashlib.sha256(card_photo).digest(),
                               hashlib.sha256(live_photo).digest()):
            return True
        expected = stand_in_live_photo(card_photo)
        return hmac.compare_digest(live_photo[:len(expected)], expected)
