"""What オンライン資格確認 (online eligibility confirmation: the card as a health-insurance card)
offers the web layer, the CLI, the benchmark and other contexts: value types, the service
protocols and their errors. Other contexts import this module only.

Vocabulary (docs/glossary.md): 保険者 -> ``insurer``; 保険者番号 -> ``insurer_number``;
被保険者 (and a 被扶養者) -> ``insured person``; 記号・番号・枝番 -> ``symbol``, ``number``,
``branch``; 資格 -> ``qualification`` (資格取得日 ``acquired_on``, 資格喪失日 ``lost_on``, 喪失事由
``loss_reason``); 本人/家族 -> ``InsuredKind`` (``insured``/``dependent``);
一部負担金割合 -> ``copay_percent``;
高齢受給者 -> ``elderly_recipient``; 限度額適用区分 -> ``LimitCategory``; 紐付け -> ``link``;
初回登録 (利用登録) -> ``activation``; 資格有効性 -> ``Validity``; 医療機関等 -> ``institution``;
資格確認端末 -> ``terminal``; 受診 (one visit's confirmation) -> ``visit``; 同意 -> ``consent``;
薬剤情報・特定健診情報・診療・手術情報 -> ``ConsentItem``;
資格確認書 -> ``CONFIRMATION_CERTIFICATE``; 資格情報のお知らせ -> ``QUALIFICATION_NOTICE``;
閲覧記録 -> ``AccessEntry``.

Dates: ``acquired_on`` is the first day covered, ``lost_on`` the first day *not* covered (the
law's 資格喪失日, the day after the last day). A qualification covers ``[acquired_on, lost_on)``:
a job change with no gap and no overlap is ``new.acquired_on == old.lost_on``.

The insured number (記号・番号・枝番) is never a look-up key for anyone but the insurer
(告知要求制限, 健康保険法 第194条の2): no method outside :class:`InsurerService` takes one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from mynumber.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound

#: The database context name (``DATA_DIR/insurance.sqlite3``, PostgreSQL schema ``insurance``).
CONTEXT = "insurance"

#: How long a consent given at a visit lets the institution see the item (the server enforces
#: it; the institution cannot extend it).
CONSENT_TTL = dt.timedelta(hours=24)
#: A terminal's challenge for a card (one use).
CHALLENGE_TTL = dt.timedelta(minutes=5)
#: The longest validity of a 資格確認書.
CONFIRMATION_CERTIFICATE_MAX_YEARS = 5


class InsurerKind(StrEnum):
    KYOKAI = "kyokai_kenpo"  # 全国健康保険協会 (協会けんぽ)
    SOCIETY = "health_insurance_society"  # 健康保険組合
    MUNICIPAL_NHI = "municipal_nhi"  # 市町村国保 (保険者番号 6 digits)
    NHI_SOCIETY = "national_health_insurance_society"  # 国民健康保険組合
    LATE_ELDERLY = "late_elderly_medical_union"  # 後期高齢者医療広域連合


class InsuredKind(StrEnum):
    """本人/家族 (not the registry's 続柄, ``relationship``)."""

    INSURED = "insured"  # 本人 (被保険者)
    DEPENDENT = "dependent"  # 家族 (被扶養者)


class LossReason(StrEnum):
    """資格喪失の事由."""

    RETIREMENT = "retirement"  # 退職
    NEW_QUALIFICATION = "new_qualification"  # 他の保険者の資格取得 (転職・扶養認定 etc.)
    DEPENDENT_ENDED = "dependent_ended"  # 被扶養者でなくなった
    MOVED_OUT = "moved_out"  # 転出 (国保)
    AGE_75 = "age_75"  # 後期高齢者医療への移行
    DEATH = "death"  # 死亡
    OTHER = "other"


class LimitCategory(StrEnum):
    """限度額適用区分 (under 70: ア-オ; 70 and over: 現役並みⅢ-Ⅰ, 一般, 低所得Ⅱ-Ⅰ)."""

    A = "a"  # ア
    I = "i"  # noqa: E741  イ
    U = "u"  # ウ
    E = "e"  # エ
    O = "o"  # noqa: E741  オ
    ACTIVE_3 = "active_3"  # 現役並みⅢ
    ACTIVE_2 = "active_2"  # 現役並みⅡ
    ACTIVE_1 = "active_1"  # 現役並みⅠ
    GENERAL = "general"  # 一般
    LOW_2 = "low_2"  # 低所得Ⅱ
    LOW_1 = "low_1"  # 低所得Ⅰ


class LinkState(StrEnum):
    UNLINKED = "unlinked"  # no 住民票コード yet
    REVIEW = "review"  # a near-miss waits in the review queue: never a link
    LINKED = "linked"  # linked on all four items (or the number checked against them)
    BLOCKED = "blocked"  # a re-check found a mismatch: nothing is shown until resolved


class LinkRoute(StrEnum):
    SEARCH = "search"  # 住基ネット's search on all four normalised items
    NUMBER = "number"  # the number the insured person gave, checked against the four items


class ReviewReason(StrEnum):
    """Why a link was not made (or was blocked): the review queue's reason codes."""

    NOT_FOUND = "not_found"  # no one matches the four items
    AMBIGUOUS = "ambiguous"  # more than one person matches
    NAME_DIFFERS = "name_differs"
    BIRTH_DATE_DIFFERS = "birth_date_differs"
    SEX_DIFFERS = "sex_differs"
    ADDRESS_DIFFERS = "address_differs"  # the 2021-2023 mislinks: three items matched
    NUMBER_UNKNOWN = "number_unknown"  # the number given names no current resident
    RECHECK_MISMATCH = "recheck_mismatch"  # a linked record no longer matches 住基ネット
    ALREADY_LINKED = "already_linked"  # the person has another open qualification


class ReviewResolution(StrEnum):
    CORRECTED = "corrected"  # the insurer corrected its record; linked on all four items
    DISMISSED = "dismissed"  # not this person: stays unlinked


class Validity(StrEnum):
    """資格有効性."""

    VALID = "valid"  # 有効
    INVALID = "invalid"  # 無効
    INVALID_NEW_QUALIFICATION = "invalid_new_qualification"  # 無効・新資格あり
    NOT_FOUND = "not_found"  # 該当なし
    MULTIPLE = "multiple"  # 複数該当


class ConfirmationMethod(StrEnum):
    CARD_PIN = "card_pin"  # card + 4-digit PIN (the card signs the terminal's challenge)
    FACE = "face"  # card + face match against the card's photo
    VISUAL = "visual"  # card + the staff's visual check (目視確認)
    DOCUMENT = "document"  # 資格確認書 (no card)


class ConsentItem(StrEnum):
    DRUGS = "drugs"  # 薬剤情報
    CHECKUPS = "checkups"  # 特定健診情報
    TREATMENTS = "treatments"  # 診療・手術情報


class CoverageDocumentKind(StrEnum):
    CONFIRMATION_CERTIFICATE = "confirmation_certificate"  # 資格確認書 (no usable card)
    QUALIFICATION_NOTICE = "qualification_notice"  # 資格情報のお知らせ (card holders)


class AccessAction(StrEnum):
    """What an access record records (the patient sees each in やりとり履歴)."""

    ELIGIBILITY = "eligibility"  # 資格確認
    CONSENT_GIVEN = "consent_given"
    CONSENT_REFUSED = "consent_refused"
    VIEW = "view"  # the institution saw a consented item
    VIEW_REFUSED = "view_refused"  # no consent, or it expired: nothing shown
    ACTIVATION = "activation"  # 初回登録


class TerminalStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


# --- value types -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Insurer:
    number: str  # 保険者番号 (8 digits; 6 for 市町村国保), check digit verified
    name: str
    kind: InsurerKind
    #: The insurer's id in the network directory (also its identity at 住基ネット).
    agency_id: str


@dataclass(frozen=True)
class PersonItems:
    """The four basic items as the insurer's record holds them (a name in kanji and kana,
    ``birth_date`` ISO, ``sex`` male/female, ``address``). Empty means missing."""

    name: str = ""
    name_kana: str = ""
    birth_date: str = ""
    sex: str = ""
    address: str = ""


@dataclass(frozen=True)
class NewInsuredPerson:
    """What an insurer enrols (資格取得届)."""

    symbol: str  # 記号 (up to 20 characters; may be empty for some 国保)
    number: str  # 番号 (up to 20)
    branch: str  # 枝番, 2 digits
    insured_kind: InsuredKind
    acquired_on: dt.date
    copay_percent: int  # 10, 20 or 30
    items: PersonItems
    elderly_recipient: bool = False
    limit_category: LimitCategory | None = None


@dataclass(frozen=True)
class Qualification:
    id: int
    insurer_number: str
    insurer_name: str
    symbol: str
    number: str
    branch: str
    insured_kind: InsuredKind
    acquired_on: dt.date
    lost_on: dt.date | None
    loss_reason: LossReason | None
    copay_percent: int
    elderly_recipient: bool
    limit_category: LimitCategory | None
    link_state: LinkState

    def covers(self, day: dt.date) -> bool:
        return self.acquired_on <= day and (self.lost_on is None or day < self.lost_on)


@dataclass(frozen=True)
class LinkResult:
    qualification_id: int
    state: LinkState
    route: LinkRoute
    #: Set when the link was not made (the review item's reason).
    reason: ReviewReason | None = None
    review_id: int | None = None
    #: The qualification this link closed (a job change), if any.
    replaced_qualification_id: int | None = None


@dataclass(frozen=True)
class ReviewItem:
    id: int
    qualification_id: int
    insurer_number: str
    reason: ReviewReason
    #: Which of the four items differed (``name``, ``birth_date``, ``sex``, ``address``).
    differing: tuple[str, ...]
    created_at: dt.datetime
    resolved_at: dt.datetime | None = None
    resolution: ReviewResolution | None = None


@dataclass(frozen=True)
class RecheckReport:
    checked: int
    still_matching: int
    blocked: int
    blocked_ids: tuple[int, ...] = ()
    #: Records 住基ネット gave no answer for (the insurer's permission refused, an outage):
    #: not judged, left linked; counted in ``checked``.
    unavailable: int = 0


@dataclass(frozen=True)
class CoverageDocument:
    id: int
    kind: CoverageDocumentKind
    qualification_id: int
    document_number: str  # printed on it; what a 資格確認書 is checked by
    issued_on: dt.date
    valid_until: dt.date
    ended_at: dt.datetime | None  # superseded by the other kind, or the qualification ended


@dataclass(frozen=True)
class Terminal:
    id: str  # the terminal's id (issued at registration)
    institution_code: str  # 医療機関コード (10 digits)
    institution_name: str
    status: TerminalStatus
    #: The terminal's own certificate (PEM), registered at enrolment; requests are signed with
    #: its key.
    certificate_pem: str = field(repr=False, default="")
    #: The staff user names (the staff sign-in's) who may use the terminal from the reception
    #: pages, sorted (:meth:`EligibilityService.set_terminal_operators`).
    operators: tuple[str, ...] = ()


@dataclass(frozen=True)
class TerminalChallenge:
    challenge_id: str
    challenge: bytes  # what the card signs (after its PIN)
    expires_at: dt.datetime


@dataclass(frozen=True)
class EligibilityResult:
    """The answer at the reception: 資格有効性 and the current qualification."""

    visit_id: str  # one visit: consents and views refer to it
    checked_at: dt.datetime
    method: ConfirmationMethod
    validity: Validity
    qualification: Qualification | None
    #: Items the patient may be asked to consent to at this visit (empty when not VALID).
    consentable: tuple[ConsentItem, ...] = ()


@dataclass(frozen=True)
class Consent:
    visit_id: str
    item: ConsentItem
    granted: bool
    given_at: dt.datetime
    expires_at: dt.datetime | None  # None for a refusal


@dataclass(frozen=True)
class ClinicalRecord:
    """One line of 薬剤情報 / 特定健診情報 / 診療・手術情報 (from claims data, synthetic)."""

    item: ConsentItem
    on: dt.date
    label: str  # a drug, a check-up measure, a procedure
    value: str  # dose and days, a measured value, an institution
    source: str  # the institution or 保険者 that reported it


@dataclass(frozen=True)
class AccessEntry:
    """One access record, as the patient sees it in やりとり履歴."""

    id: int
    at: dt.datetime
    institution_code: str
    institution_name: str
    action: AccessAction
    item: ConsentItem | None
    method: ConfirmationMethod | None
    validity: Validity | None


@dataclass(frozen=True)
class CardStatus:
    """What the portal shows the resident: whether the card is in use as the insurance card,
    and which insurer it points to now."""

    activated: bool
    activated_at: dt.datetime | None
    current: Qualification | None
    documents: tuple[CoverageDocument, ...] = ()


# --- what the context needs from others (wired by the assembler) -----------------------------


class HolderResolver(Protocol):
    """J-LIS naming the holder of a user-authentication certificate the caller has verified
    (for 初回登録 only: the registry's resident id). Provided by the assembler (JPKI)."""

    def resident_of_certificate(self, serial: int) -> int: ...


class NumberResolver(Protocol):
    """The registry's answer for a 個人番号 the insured person gave: the 住民票コード and the
    resident id, or None (the number itself is never stored by the insurer here)."""

    def resident_for_number(self, individual_number: str, actor: str) -> tuple[int, str] | None:
        ...


class CardUsability(Protocol):
    """Which of these people hold a card usable at a terminal now: a user-authentication
    certificate JPKI reports good (not revoked, within its validity). Provided by the
    assembler (``insurance.adapters.JpkiCardUsability``); decides 資格確認書 or
    資格情報のお知らせ together with the activation."""

    def usable(self, resident_ids: Sequence[int]) -> set[int]: ...


class FaceMatcher(Protocol):
    """Compares a live photo with the card's photo. Pluggable: the embedded mode's stand-in
    (``insurance.face.DeterministicStandInMatcher``) is deterministic and says so."""

    name: str

    def matches(self, card_photo: bytes, live_photo: bytes) -> bool: ...


# --- service protocols -----------------------------------------------------------------------


class InsurerService(Protocol):
    """The insurer's side: insurers, enrolment, linking, the review queue, the re-check,
    loss of qualification, documents. ``actor`` names who did it (``insurer:<number>:<staff>``)."""

    def register_insurer(self, number: str, name: str, kind: InsurerKind, agency_id: str,
                         actor: str) -> Insurer: ...

    def insurers(self) -> list[Insurer]: ...

    def insurer(self, number: str) -> Insurer: ...

    def enrol(self, insurer_number: str, person: NewInsuredPerson, actor: str) -> Qualification:
        """資格取得: the record, unlinked. (Insurer, symbol, number, branch) is unique."""
        ...

    def find(self, insurer_number: str, symbol: str, number: str, branch: str) -> Qualification:
        """The insurer's own look-up by insured number (the only one there is)."""
        ...

    def qualifications(self, insurer_number: str, *, state: LinkState | None = None,
                       limit: int = 100, offset: int = 0) -> list[Qualification]: ...

    def link_by_search(self, insurer_number: str, qualification_id: int, actor: str
                       ) -> LinkResult:
        """Search 住基ネット on all four items of the record (FourItemsRequired before asking
        when one is missing). One match: linked. None or several: a review item, no link."""
        ...

    def link_by_number(self, insurer_number: str, qualification_id: int,
                       individual_number: str, actor: str) -> LinkResult:
        """The number the insured person gave, checked against all four items of the record
        (by 住基ネット's copy): all four agree -> linked; otherwise a review item naming the
        differing items, no link."""
        ...

    def reviews(self, insurer_number: str, *, open_only: bool = True) -> list[ReviewItem]: ...

    def resolve_review(self, insurer_number: str, review_id: int,
                       resolution: ReviewResolution, actor: str,
                       corrected: PersonItems | None = None) -> ReviewItem:
        """CORRECTED needs the corrected four items; the record is updated and linked by a
        four-item search again (still no link on a mismatch). DISMISSED leaves it unlinked."""
        ...

    def recheck(self, insurer_number: str | None = None, *, batch: int = 1000) -> RecheckReport:
        """Compare every linked record with 住基ネット (by the 住民票コード); block any that no
        longer agrees on all four items (nothing is shown for it until the insurer resolves
        the review item the block opens)."""
        ...

    def lose(self, insurer_number: str, qualification_id: int, lost_on: dt.date,
             reason: LossReason, actor: str) -> Qualification: ...

    def issue_documents(self, insurer_number: str | None = None, *,
                        today: dt.date | None = None, years: int = 5
                        ) -> dict[CoverageDocumentKind, int]:
        """Without application: a 資格確認書 for each current insured person without a usable
        card, a 資格情報のお知らせ for each with one (activated, and a good user-authentication
        certificate: see :class:`CardUsability`); one document per qualification at a time
        (issuing one ends the other). A record in review or blocked gets nothing (the insurer
        resolves it first). ``years`` at most 5."""
        ...

    def documents(self, qualification_id: int) -> list[CoverageDocument]: ...


class EligibilityService(Protocol):
    """The institution's side (terminals), the patient's consent, and the resident's side."""

    def register_terminal(self, institution_code: str, institution_name: str,
                          certificate_pem: str, actor: str) -> Terminal: ...

    def terminal(self, terminal_id: str) -> Terminal: ...

    def set_terminal_status(self, terminal_id: str, status: TerminalStatus,
                            actor: str) -> Terminal: ...

    def set_terminal_operators(self, terminal_id: str, usernames: Sequence[str],
                               actor: str) -> Terminal:
        """Who may use the terminal from the reception pages: staff user names (the staff
        sign-in's form, no whitespace), deduplicated, at most 20; replaces the list (empty:
        nobody), audited ``insurance:terminal:operators``. A suspended terminal too."""
        ...

    def terminals_for_operator(self, username: str, *, include_suspended: bool = False
                               ) -> list[Terminal]:
        """The terminals whose operators include ``username`` (the whole name, never a part
        of another), oldest first; active ones only unless ``include_suspended``."""
        ...

    def authenticate_terminal(self, terminal_id: str, kind: str, fields: Mapping[str, object],
                              signature: bytes, nonce: str, requested_at: dt.datetime
                              ) -> Terminal:
        """A signed terminal request: fresh, signed with the key of the terminal's registered
        certificate (still valid), the nonce spent once in the database."""
        ...

    def challenge(self, terminal: Terminal) -> TerminalChallenge: ...

    def activate(self, challenge_id: str, certificate_pem: str, signature: bytes, *,
                 terminal: Terminal | None = None) -> CardStatus:
        """初回登録: the card's user-authentication certificate (verified: chain, revocation,
        signature over the challenge) tied to the holder's links, once."""
        ...

    def check_card(self, terminal: Terminal, challenge_id: str, certificate_pem: str, *,
                   method: ConfirmationMethod, signature: bytes | None = None,
                   live_photo: bytes | None = None, card_photo: bytes | None = None,
                   staff: str | None = None, today: dt.date | None = None
                   ) -> EligibilityResult:
        """Card + PIN (``signature`` over the challenge), face (``live_photo`` matched with
        ``card_photo`` by the matcher) or visual (``staff`` names who looked). The certificate
        is verified (chain, revocation) in every method; the challenge is spent once."""
        ...

    def check_document(self, terminal: Terminal, document_number: str, birth_date: dt.date, *,
                       today: dt.date | None = None) -> EligibilityResult: ...

    def consent(self, terminal: Terminal, visit_id: str,
                choices: Mapping[ConsentItem, bool]) -> list[Consent]:
        """The patient's choices at this visit, item by item; a refusal is recorded too."""
        ...

    def records(self, terminal: Terminal, visit_id: str, item: ConsentItem
                ) -> list[ClinicalRecord]:
        """Only with this visit's unexpired consent for the item (ConsentRequired otherwise,
        recorded as VIEW_REFUSED); every view is recorded."""
        ...

    def card_status(self, resident_id: int) -> CardStatus: ...

    def access_entries(self, resident_id: int, *, limit: int = 200) -> list[AccessEntry]: ...

    def activate_for_resident(self, resident_id: int, certificate_serial: int) -> CardStatus:
        """初回登録 from the portal: the portal verified the card authentication of this
        resident just now (the assembler checks it); ties the holder's pairwise id."""
        ...

    def record_clinical(self, resident_id: int, records: Sequence[ClinicalRecord]) -> int:
        """Claims data arriving from 支払基金 (the seed and the benchmark feed it): the
        person's 薬剤情報 / 特定健診情報 / 診療・手術情報 lines; the number stored."""
        ...


# --- errors ----------------------------------------------------------------------------------


class InvalidInsuranceInput(InvalidInput):
    code = "insurance_invalid_input"
    title = "Invalid input"


class InvalidInsurerNumber(InvalidInput):
    code = "insurance_invalid_insurer_number"
    title = "Not a valid 保険者番号 (length or check digit)"


class FourItemsRequired(InvalidInput):
    """A link needs all four basic items: kana name + birth date + sex alone is refused."""

    code = "insurance_four_items_required"
    title = "Linking needs all four basic items (name, birth date, sex, address)"


class InsurerNotFound(NotFound):
    code = "insurance_insurer_not_found"
    title = "No such insurer"


class InsurerAlreadyRegistered(Conflict):
    """Another insurer (name, kind or agency) already has this 保険者番号."""

    code = "insurance_insurer_exists"
    title = "This 保険者番号 is already registered to another insurer"


class QualificationNotFound(NotFound):
    code = "insurance_qualification_not_found"
    title = "No such insured person at this insurer"


class ReviewNotFound(NotFound):
    code = "insurance_review_not_found"
    title = "No such review item"


class AlreadyEnrolled(Conflict):
    code = "insurance_already_enrolled"
    title = "This insured number is already enrolled"


class OverlappingQualification(Conflict):
    code = "insurance_overlapping_qualification"
    title = "The person has a qualification this one would overlap"


class AlreadyLinked(Conflict):
    code = "insurance_already_linked"
    title = "This record is already linked"


class LinkBlocked(Forbidden):
    code = "insurance_link_blocked"
    title = "This record is blocked until the insurer resolves its review"


class TerminalNotFound(NotAuthenticated):
    code = "insurance_terminal_unknown"
    title = "Unknown or suspended terminal"


class TerminalRefused(NotAuthenticated):
    """A terminal request that is stale, badly signed, replayed, or whose certificate expired
    (``reason``)."""

    code = "insurance_terminal_refused"
    title = "The terminal's request was refused"


class ChallengeRefused(NotAuthenticated):
    """Unknown, expired, used, or another terminal's challenge (``reason``)."""

    code = "insurance_challenge_refused"
    title = "The challenge cannot be used"


class CardRefused(NotAuthenticated):
    """The card's certificate or signature failed (``reason``: revoked, expired,
    bad_signature, untrusted, face_mismatch ...)."""

    code = "insurance_card_refused"
    title = "The card could not be verified"


class NotActivated(Forbidden):
    code = "insurance_not_activated"
    title = "The card is not registered for use as a health-insurance card"


class AlreadyActivated(Conflict):
    code = "insurance_already_activated"
    title = "The card is already registered for insurance use"


class VisitNotFound(NotFound):
    code = "insurance_visit_not_found"
    title = "No such visit at this institution"


class ConsentRequired(Forbidden):
    """No consent for this item at this visit, or it expired (``reason``: none, refused,
    expired). The refusal is recorded."""

    code = "insurance_consent_required"
    title = "The patient has not consented to this at this visit"


class DocumentNotFound(NotFound):
    code = "insurance_document_not_found"
    title = "No such 資格確認書"


class FaceMatchUnavailable(Forbidden):
    """This installation has no face matcher: confirm by card + PIN or by a visual check."""

    code = "insurance_face_match_unavailable"
    title = "Face matching is not available here"

