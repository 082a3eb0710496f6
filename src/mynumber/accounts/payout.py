"""A payout run: an agency pays a benefit to a list of recipients into their 公金受取口座.

``PayoutService.run`` takes the paying agency, the task it pays under (a task the legal table
permits for ``public_fund_account``, e.g. ``extra-public-fund-emergency-benefit``), the
recipients as (the agency's own 宛名番号, amount in yen), and writes the 全銀協 総合振込 file:

1. Each chunk of recipients (``chunk``, default 5,000) is resolved through the network in one
   batch exchange (``AgenciesService.query_batch`` -> ``NetworkService.exchange_batch`` ->
   デジタル庁's ``AccountProvisionServer.answer_batch``): every look-up is recorded and logged
   as one exchange, so each resident sees it in やりとり履歴.
2. Recipients with an account become data records, streamed to a temporary file next to the
   output (``.<name>.<random>.partial``) through ``transfer_file.TransferFileWriter``; every
   record is validated before a byte of it is written, and on any error the temporary file is
   deleted. The output file appears only once complete (fsync, then an atomic rename): no
   half-written transfer file ever exists under the name a bank upload would pick up.
3. Recipients without a registered account (デジタル庁 answered "not held") are reported and
   sent an お知らせ through the portal by the paying agency, asking them to register an account
   or to tell the agency another way to be paid (never silently excluded). The notice is
   addressed by the agency's own 機関別符号 (its ``agency_codes``); the portal asks the core to
   translate it to the portal's code (``NetworkService.portal_codes``, audited), as for every
   event notice. Recipients the agency has no code for (not enrolled) cannot be reached through
   the portal: they are reported as ``not_enrolled`` for the agency to contact by post. The
   notices go out before the file is renamed into place (if they cannot be sent, the run
   fails and nothing is paid); when nobody has an account no file is written at all.
4. The run is recorded in ``payout_runs`` (counts, total, the file's SHA-256 and size, start and
   end, ``completed`` or ``failed`` with the error's code); no per-person data is kept there.

Memory: a set of the address numbers seen (duplicates are refused: a recipient paid twice is a
double payment), the unpaid list, and one chunk at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import update

from mynumber.accounts import models as m
from mynumber.accounts.banks import BankDirectory
from mynumber.accounts.interfaces import DIGITAL_AGENCY, PUBLIC_FUND_ACCOUNT_ITEM
from mynumber.accounts.transfer_file import (
    MAX_AMOUNT,
    DepositType,
    Requester,
    Transfer,
    TransferFileWriter,
)
from mynumber.agencies.interfaces import AgenciesService
from mynumber.db import Databases, utcnow
from mynumber.errors import InvalidInput
from mynumber.kernel.retry import InfrastructureUnavailable
from mynumber.network.interfaces import MAX_BATCH, Outcome
from mynumber.portal.interfaces import EventNotice

log = logging.getLogger(__name__)

CONTEXT = m.CONTEXT
DEFAULT_CHUNK = 5_000
NOTICE_KIND = "public_fund_account_missing"
#: Attempts per chunk when the network answers 503 (e.g. the batch rate limit): nothing was
#: recorded then, so the chunk is simply asked again after Retry-After (at most this long).
CHUNK_ATTEMPTS = 3
MAX_RETRY_WAIT_SECONDS = 60
NOTICE_BATCH = 2_000
_DEPOSIT = {"ordinary": DepositType.ORDINARY, "current": DepositType.CURRENT,
            "savings": DepositType.SAVINGS}


class PayoutError(InvalidInput):
    """The run cannot be made (bad input, or the network refused the whole batch)."""

    code = "accounts_payout_invalid"
    title = "The payout run cannot be made"


class PayoutNotices(Protocol):
    """The portal's notices sent because of an event (portal.interfaces)."""

    def send_event_notices(self, notices: Sequence[EventNotice]) -> int: ...


@dataclass(frozen=True)
class Unpaid:
    """A recipient the run did not pay. ``reason``: ``no_account`` (noticed through the
    portal), ``not_enrolled`` (the agency has no code for the person: contact them by post),
    or ``refused:<refusal reason>``."""

    address_number: str
    amount: int
    reason: str
    noticed: bool = False


@dataclass(frozen=True)
class PayoutReport:
    run_id: int
    agency_id: str
    task_id: str
    benefit: str
    transfer_date: dt.date
    recipients: int
    paid: int
    total_yen: int
    groups: int
    file: Path | None  # None when nobody could be paid (no file is written)
    file_bytes: int
    file_sha256: str
    unpaid: list[Unpaid] = field(default_factory=list)
    noticed: int = 0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def counts(self) -> dict[str, int]:
        out = {"no_account": 0, "not_enrolled": 0, "refused": 0}
        for u in self.unpaid:
            out["refused" if u.reason.startswith("refused:") else u.reason] += 1
        return out


class _Sink:
    """The temporary file, opened on the first byte, hashed and counted as written."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path: Path | None = None
        self.file: IO[bytes] | None = None
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        if self.file is None:
            fd, name = tempfile.mkstemp(dir=self.target.parent,
                                        prefix=f".{self.target.name}.", suffix=".partial")
            self.path = Path(name)
            self.file = os.fdopen(fd, "wb", buffering=1 << 20)
        self.digest.update(data)
        self.size += len(data)
        return self.file.write(data)

    def commit(self) -> None:
        assert self.file is not None and self.path is not None
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.path, self.target)
        self.file = None

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _notice_text(benefit: str, agency_name: str) -> tuple[str, str]:
    title = f"{benefit}の振込先口座のご登録のお願い"
    body = (f"{benefit}を公金受取口座へお振り込みする準備をしましたが、あなたの公金受取口座が"
            "登録されていないため、今回の振込には含まれていません。給付を受け取れなくなるわけ"
            "ではありません。マイナポータルの「公金受取口座」で口座を登録していただくか、"
            f"{agency_name}へ振込先の口座など別のお受け取り方法をお知らせください。")
    return title, body


class PayoutService:
    def __init__(
        self,
        databases: Databases,
        agencies: AgenciesService,
        notices: PayoutNotices | None,
        directory: Callable[[], BankDirectory],
        *,
        agency_name: Callable[[str], str] = lambda agency_id: agency_id,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.databases = databases
        self.agencies = agencies
        self.notices = notices
        self.directory = directory
        self.agency_name = agency_name
        self.clock = clock
        self.sleep = sleep

    # -- the run ---------------------------------------------------------------------------
    def run(
        self,
        agency_id: str,
        task_id: str,
        benefit: str,
        recipients: Iterable[tuple[str, int]],
        transfer_date: dt.date,
        requester: Requester,
        out: Path,
        *,
        actor: str | None = None,
        chunk: int = DEFAULT_CHUNK,
        notify: bool = True,
        on_progress: Callable[[int], None] | None = None,
    ) -> PayoutReport:
        if not 0 < chunk <= MAX_BATCH:
            raise PayoutError(f"chunk: 1 to {MAX_BATCH:,}", field="chunk")
        benefit = benefit.strip()
        if not 0 < len(benefit) <= 120:
            raise PayoutError("benefit: 1 to 120 characters", field="benefit")
        out = Path(out)
        if not out.parent.is_dir():
            raise PayoutError("the output file's directory does not exist", field="out")
        sink = _Sink(out)
        # The header is validated here, before anything is looked up or written.
        writer = TransferFileWriter(sink, requester, transfer_date)
        started = self.clock()
        run_id = self._start(agency_id, task_id, benefit, transfer_date,
                             actor or f"agency:{agency_id}", started)
        unpaid: list[Unpaid] = []
        seen: set[str] = set()
        count = 0
        noticed = 0
        try:
            batch: list[tuple[str, int]] = []
            for address_number, amount in recipients:
                if address_number in seen:
                    raise PayoutError(f"recipient {count + 1}: an address number appears twice "
                                      "(it would be paid twice)", field="recipients")
                if isinstance(amount, bool) or not isinstance(amount, int) or not (
                        1 <= amount <= MAX_AMOUNT):
                    raise PayoutError(f"recipient {count + 1}: amount must be 1 to "
                                      f"{MAX_AMOUNT:,} yen", field="amount")
                seen.add(address_number)
                batch.append((address_number, amount))
                count += 1
                if len(batch) == chunk:
                    self._chunk(agency_id, task_id, batch, writer, unpaid, transfer_date)
                    batch = []
                    if on_progress is not None:
                        on_progress(count)
            if batch:
                self._chunk(agency_id, task_id, batch, writer, unpaid, transfer_date)
                if on_progress is not None:
                    on_progress(count)
            if count == 0:
                raise PayoutError("no recipients", field="recipients")
            # The notices before the file is renamed into place: if they cannot be sent the
            # run fails and nothing is paid (a re-run sends them under its own run id).
            if notify and self.notices is not None:
                noticed = self._notify(run_id, agency_id, benefit, unpaid)
                if noticed:
                    unpaid = [Unpaid(u.address_number, u.amount, u.reason,
                                     u.reason == "no_account") for u in unpaid]
            if writer.summary.count:
                summary = writer.close()
                sink.commit()
            else:  # nobody has an account: no file (a 総合振込 file needs one transfer)
                summary = writer.summary
        except BaseException as exc:
            sink.discard()
            self._finish(run_id, state="failed", error=_error_text(exc), recipients=count,
                         unpaid=unpaid)
            raise
        finished = self.clock()
        report = PayoutReport(
            run_id=run_id, agency_id=agency_id, task_id=task_id, benefit=benefit,
            transfer_date=transfer_date, recipients=count, paid=summary.count,
            total_yen=summary.total, groups=summary.groups,
            file=out if summary.count else None, file_bytes=sink.size,
            file_sha256=sink.digest.hexdigest() if summary.count else "", unpaid=unpaid,
            noticed=noticed, started_at=started, finished_at=finished)
        self._finish(run_id, state="completed", recipients=count, unpaid=unpaid,
                     report=report)
        log.info("payout run %d of %s: %d recipients, %d paid, %d unpaid, %d noticed",
                 run_id, agency_id, count, summary.count, len(unpaid), noticed)
        return report

    def _resolve(self, agency_id: str, task_id: str, numbers: list[str]) -> list[Any]:
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                return self.agencies.query_batch(agency_id, numbers, task_id, DIGITAL_AGENCY,
                                                 PUBLIC_FUND_ACCOUNT_ITEM)
            except InfrastructureUnavailable as exc:
                # Nothing was recorded or released: ask again after Retry-After.
                if attempt == CHUNK_ATTEMPTS:
                    raise
                wait = min(float(exc.retry_after), MAX_RETRY_WAIT_SECONDS)
                log.warning("payout: the network answered %s; asking again in %.0f s",
                            exc.extra.get("reason", "unavailable"), wait)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _chunk(self, agency_id: str, task_id: str, batch: list[tuple[str, int]],
               writer: TransferFileWriter, unpaid: list[Unpaid], on: dt.date) -> None:
        results = self._resolve(agency_id, task_id, [n for n, _ in batch])
        directory = self.directory()
        names: dict[tuple[str, str], tuple[str, str]] = {}
        for (number, amount), result in zip(batch, results, strict=True):
            if result is None:
                unpaid.append(Unpaid(number, amount, "not_enrolled"))
                continue
            if result.outcome is Outcome.NOT_HELD:
                unpaid.append(Unpaid(number, amount, "no_account"))
                continue
            if result.outcome is not Outcome.PROVIDED or result.data is None:
                reason = result.reason.value if result.reason else result.outcome.value
                if result.reason is not None and result.reason.value in (
                        "not_in_legal_table", "requester_suspended", "provider_suspended",
                        "no_number_use", "unknown_task", "unknown_item", "bad_signature",
                        "stale_request", "replayed_request", "unknown_agency",
                        "provider_unavailable"):
                    # The whole batch was refused: this run cannot be made.
                    raise PayoutError(f"the network refused the look-ups ({reason})",
                                      field="task_id", reason=reason)
                unpaid.append(Unpaid(number, amount, f"refused:{reason}"))
                continue
            data = result.data
            key = (data["bank_code"], data["branch_code"])
            found = names.get(key)
            if found is None:
                bank = directory.bank(key[0], on)
                branch = directory.branch(key[0], key[1], on)
                found = names[key] = (bank.kana if bank else "", branch.kana if branch else "")
            writer.add(Transfer(
                bank_code=key[0], bank_name=found[0], branch_code=key[1],
                branch_name=found[1], deposit_type=_DEPOSIT[data["deposit_type"]],
                account_number=data["account_number"], recipient_name=data["holder_name"],
                amount=amount))

    def _notify(self, run_id: int, agency_id: str, benefit: str,
                unpaid: Sequence[Unpaid]) -> int:
        """The お知らせ to each recipient without an account, from the paying agency."""
        assert self.notices is not None
        missing = [u.address_number for u in unpaid if u.reason == "no_account"]
        if not missing:
            return 0
        title, body = _notice_text(benefit, self.agency_name(agency_id))
        sent = 0
        for start in range(0, len(missing), NOTICE_BATCH):
            numbers = missing[start:start + NOTICE_BATCH]
            codes = self.agencies.agency_codes(agency_id, numbers)
            notices = [EventNotice(agency_id, codes[n], NOTICE_KIND, title, body,
                                   f"payout:{run_id}:{n}") for n in numbers if n in codes]
            if notices:
                self.notices.send_event_notices(notices)
                sent += len(notices)
        return sent

    # -- the run's record ------------------------------------------------------------------
    def _start(self, agency_id: str, task_id: str, benefit: str, transfer_date: dt.date,
               actor: str, started: dt.datetime) -> int:
        with self.databases.unit_of_work(CONTEXT) as session:
            row = m.PayoutRun(
                agency_id=agency_id[:64], task_id=task_id[:64], benefit=benefit,
                transfer_date=transfer_date, actor=actor[:80], state="running", recipients=0,
                paid=0, total_yen=0, no_account=0, not_enrolled=0, refused=0, noticed=0,
                file_groups=0, file_bytes=0, started_at=started)
            session.add(row)
            session.flush()
            return int(row.id)

    def _finish(self, run_id: int, *, state: str, recipients: int, unpaid: Sequence[Unpaid],
                report: PayoutReport | None = None, error: str | None = None) -> None:
        counts = {"no_account": 0, "not_enrolled": 0, "refused": 0}
        for u in unpaid:
            counts["refused" if u.reason.startswith("refused:") else u.reason] += 1
        values: dict[str, Any] = {"state": state, "recipients": recipients,
                                  "finished_at": self.clock(), "error": error, **counts}
        if report is not None:
            values.update(paid=report.paid, total_yen=report.total_yen,
                          noticed=report.noticed, file_groups=report.groups,
                          file_bytes=report.file_bytes,
                          file_sha256=report.file_sha256 or None)
        with self.databases.unit_of_work(CONTEXT) as session:
            session.execute(update(m.PayoutRun).where(m.PayoutRun.id == run_id)
                            .values(**values))

    def runs(self, agency_id: str | None = None) -> list[dict[str, Any]]:
        """Recorded runs, newest first (for the CLI)."""
        from sqlalchemy import select

        with self.databases.unit_of_work(CONTEXT) as session:
            stmt = select(m.PayoutRun).order_by(m.PayoutRun.id.desc())
            if agency_id is not None:
                stmt = stmt.where(m.PayoutRun.agency_id == agency_id)
            return [{c.name: getattr(r, c.name) for c in m.PayoutRun.__table__.columns}
                    for r in session.scalars(stmt)]


def _error_text(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return (str(code) if isinstance(code, str) else type(exc).__name__)[:200]
