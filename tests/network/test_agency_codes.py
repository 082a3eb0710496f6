"""機関別符号: derived in the core, different per agency, checkable, unlinkable without the key."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynumber.codes import resident_code
from mynumber.keys import Pkcs11BlockCipher, SoftwareBlockCipher
from mynumber.network.agency_codes import (
    CODE_LENGTH,
    make_code,
    make_codes,
    open_code,
    translate_code,
)
from tests.jpki.test_keyproviders import SoftHSM, softhsm  # noqa: F401  (fixture)

CIPHER = SoftwareBlockCipher(bytes(range(32)))
resident_codes = st.from_regex(r"[0-9]{10}", fullmatch=True).map(
    lambda s: s + resident_code.calc_check_digit(s)
)
agency_numbers = st.integers(min_value=1, max_value=2**32 - 1)


@given(resident_codes, agency_numbers, agency_numbers)
def test_two_agencies_codes_for_one_person_differ_and_translate(code, a, b):
    code_a, code_b = make_code(CIPHER, a, code), make_code(CIPHER, b, code)
    assert len(code_a) == CODE_LENGTH
    if a != b:
        assert code_a != code_b
        # A code is checkable: another agency presenting it is not accepted.
        assert open_code(CIPHER, b, code_a) is None
    assert open_code(CIPHER, a, code_a) == code
    assert translate_code(CIPHER, a, code_a, b) == code_b


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_junk_codes_are_rejected_not_crashing(junk):
    assert open_code(CIPHER, 7, junk) is None


def test_random_well_formed_codes_are_rejected():
    import base64

    for _ in range(2000):
        forged = base64.b32encode(os.urandom(16)).decode().rstrip("=")
        assert open_code(CIPHER, 7, forged) is None


def test_codes_do_not_contain_the_resident_code_and_depend_on_the_key():
    code = "12345678903" if resident_code.is_valid("12345678903") else None
    code = code or "1234567890" + resident_code.calc_check_digit("1234567890")
    one = make_code(CIPHER, 5, code)
    other = make_code(SoftwareBlockCipher(bytes(32)), 5, code)
    assert one != other
    assert code not in one


def test_batch_and_single_agree():
    codes = ["0000000001" + resident_code.calc_check_digit("0000000001"),
             "9876543210" + resident_code.calc_check_digit("9876543210")]
    batch = make_codes(CIPHER, [(3, codes[0]), (4, codes[1])])
    assert batch == [make_code(CIPHER, 3, codes[0]), make_code(CIPHER, 4, codes[1])]


def test_the_agency_code_key_can_live_on_a_pkcs11_token(softhsm: SoftHSM):  # noqa: F811
    token = Pkcs11BlockCipher(softhsm.library, softhsm.token_label, softhsm.user_pin,
                              development=True)
    code = "1234567890" + resident_code.calc_check_digit("1234567890")
    made = make_code(token, 42, code)
    assert open_code(token, 42, made) == code
    assert open_code(token, 43, made) is None
    # The same key is found again (not regenerated) by a second provider object.
    again = Pkcs11BlockCipher(softhsm.library, softhsm.token_label, softhsm.user_pin,
                              development=True)
    assert make_code(again, 42, code) == made

    from pkcs11 import Attribute, ObjectClass

    def inspect(session):
        key = next(iter(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                             Attribute.LABEL: Pkcs11BlockCipher.LABEL})))
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        with pytest.raises(Exception):
            _ = key[Attribute.VALUE]

    token._token.run(inspect)
