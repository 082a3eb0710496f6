"""Pure validators, check-digit calculators and normalisers for Japanese public identifiers.

One small module per number format, in the style of python-stdnum: each exposes ``compact``,
``validate``, ``is_valid``, ``format`` and ``calc_check_digit``.  Nothing here performs I/O,
reads configuration or logs; every function is deterministic.

* :mod:`mynumber.codes.individual_number` -- 個人番号 (12 digits)
* :mod:`mynumber.codes.resident_code` -- 住民票コード (11 digits)
* :mod:`mynumber.codes.corporate_number` -- 法人番号 (13 digits)
* :mod:`mynumber.codes.local_government_code` -- 全国地方公共団体コード (6 digits)
* :mod:`mynumber.codes.ff1` -- NIST SP 800-38G FF1 format-preserving encryption
* :mod:`mynumber.codes.kana` -- normalisation of names, kana and addresses for record matching
* :mod:`mynumber.codes.exceptions` -- the :class:`ValidationError` hierarchy

Error messages never contain the value that was checked: a 個人番号 must not end up in an
exception message and from there in a log line.
"""
