"""住基ネット's tables (its own database). Only ``mynumber.juki`` (and the assemblers) import
this module.

- ``identity_copies``: one row per person: 本人確認情報 as last applied from the registry, the
  normalised search keys, and ``applied_seq`` (the event that row reflects: older events are
  ignored).
- ``identity_queries`` and ``identity_query_subjects``: every query, with the persons it
  concerned (the resident's 提供状況の開示 reads these).
- ``request_nonces``: the (agency, nonce) of every signed HTTP query accepted (a replay is
  refused by the unique constraint).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.db import UTCDateTime, context_metadata

CONTEXT = "juki"
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = context_metadata(CONTEXT)



class IdentityCopy(Base):
    __tablename__ = "identity_copies"
    __table_args__ = (
        # The four-item search: a name key + birth date narrow to a handful of rows; sex and
        # address are compared on them.
        Index("ix_identity_copies_kana_birth", "key_kana", "birth_date"),
        Index("ix_identity_copies_name_birth", "key_name", "birth_date"),
    )

    resident_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    resident_code: Mapped[str] = mapped_column(String(11), unique=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name_kana: Mapped[str] = mapped_column(String(100))
    given_name_kana: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(200))
    municipality_code: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(12))
    change_kind: Mapped[str] = mapped_column(String(20))
    changed_on: Mapped[dt.date] = mapped_column(Date)
    key_name: Mapped[str] = mapped_column(String(200))
    key_kana: Mapped[str] = mapped_column(String(200))
    key_address: Mapped[str] = mapped_column(String(200))
    applied_seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class IdentityQuery(Base):
    __tablename__ = "identity_queries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    agency_id: Mapped[str] = mapped_column(String(64), index=True)
    agency_name: Mapped[str] = mapped_column(String(200))
    use_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str] = mapped_column(String(12))
    refusal: Mapped[str | None] = mapped_column(String(64))
    # How many persons matched (a search), without saying who beyond the subjects table.
    matches: Mapped[int] = mapped_column(Integer)


class IdentityQuerySubject(Base):
    """A person a query concerned: the one answered, every one of an ambiguous match, the
    holder of the code a refused query named."""

    __tablename__ = "identity_query_subjects"
    __table_args__ = (Index("ix_identity_query_subjects_resident", "resident_id", "query_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    query_id: Mapped[int] = mapped_column(BigInteger, index=True)
    resident_id: Mapped[int] = mapped_column(BigInteger)


class RequestNonce(Base):
    __tablename__ = "request_nonces"
    __table_args__ = (UniqueConstraint("agency_id", "nonce"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
