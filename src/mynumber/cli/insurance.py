"""`mynumber insurance …`: オンライン資格確認 for operators and insurers' staff: insurers,
enrolment (one, or a CSV of many), linking on all four items, the review queue, the mass
re-check, loss of qualification, documents without application, and medical institutions'
terminals.

Every command works in production (MYNUMBER_MODE=production) but ``terminal keygen``, a
demo tool: a real institution's terminal makes its key in its own device and brings its
certificate. A 個人番号 is never an argument (it would stay in the shell's history and the
process list): ``link --route number`` reads it from standard input (hidden on a terminal),
uses it for that call and prints nothing of it. Nor is any other personal item (氏名, カナ,
生年月日, 性別, 住所): ``enrol`` (one person) and ``reviews resolve --resolution corrected``
ask for them at a prompt on a terminal, or read them from standard input, one a line in
that order; many people are enrolled from a CSV (``enrol --csv``). The ranges of ``persons
--limit`` (1-1,000) and ``recheck --batch`` (1-10,000) are the service's own.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from mynumber.cli.common import CliGroup, container_from_env, fail, refuse_in_production
from mynumber.errors import DomainError
from mynumber.insurance.interfaces import (
    CoverageDocumentKind,
    InsuredKind,
    InsurerKind,
    LimitCategory,
    LinkRoute,
    LinkState,
    LossReason,
    NewInsuredPerson,
    PersonItems,
    ReviewResolution,
    TerminalStatus,
)

app = typer.Typer(cls=CliGroup, no_args_is_help=True,
                  help="オンライン資格確認: insurers, insured persons, linking, reviews, "
                       "documents and medical institutions' terminals.")
insurer_app = typer.Typer(cls=CliGroup, no_args_is_help=True, help="保険者: register, list.")
reviews_app = typer.Typer(cls=CliGroup, no_args_is_help=True,
                          help="The review queue: near-misses and re-check mismatches.")
terminal_app = typer.Typer(cls=CliGroup, no_args_is_help=True,
                           help="資格確認端末: medical institutions' terminals.")
app.add_typer(insurer_app, name="insurer")
app.add_typer(reviews_app, name="reviews")
app.add_typer(terminal_app, name="terminal")

#: Who did it, for commands not run on an insurer's behalf.
CLI_ACTOR = "operator:cli"
#: The CSV columns of ``enrol --csv`` (a header line names them; the last three may be left
#: out or empty).
CSV_COLUMNS = ("symbol", "number", "branch", "insured_kind", "acquired_on", "copay_percent",
               "name", "name_kana", "birth_date", "sex", "address", "elderly_recipient",
               "limit_category")
CSV_REQUIRED = CSV_COLUMNS[:11]

InsurerOption = Annotated[str, typer.Option("--insurer", help="the 保険者番号")]


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str, indent=2))


def _actor(insurer_number: str) -> str:
    return f"insurer:{insurer_number}:cli"


def _fail_domain(exc: DomainError, code: int = 1) -> None:
    extra = f" ({exc.extra['reason']})" if "reason" in exc.extra else ""
    fail(f"{exc.code}: {exc.detail}{extra}", code=code)


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: write it as YYYY-MM-DD", code=2)


def _plain(value: Any) -> Any:
    """A dataclass (or a list of them) as JSON-ready dicts, without certificate PEMs."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = dataclasses.asdict(value)
        out.pop("certificate_pem", None)
        return out
    return value


# --- insurers ----------------------------------------------------------------------------------


@insurer_app.command("register")
def insurer_register(
    number: Annotated[str, typer.Option(help="保険者番号 (8 digits; 6 for 市町村国保), check "
                                             "digit included")],
    name: Annotated[str, typer.Option(help="保険者名")],
    kind: Annotated[InsurerKind, typer.Option(help="the kind of insurer")],
    agency_id: Annotated[str, typer.Option(help="the insurer's agency in the network "
                                                "directory (its signed API requests)")],
) -> None:
    """Register an insurer."""
    container = container_from_env()
    try:
        insurer = container.insurance.register_insurer(number, name, kind, agency_id,
                                                       CLI_ACTOR)
    except DomainError as exc:
        _fail_domain(exc, 2)
    _print(_plain(insurer))


@insurer_app.command("list")
def insurer_list() -> None:
    """Every insurer."""
    _print(_plain(container_from_env().insurance.insurers()))


# --- insured persons -------------------------------------------------------------------------


def _bool(value: str, line: int) -> bool:
    text = value.strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ValueError(f"line {line}: elderly_recipient: write true or false")


def _person_from_row(row: dict[str, str], line: int) -> NewInsuredPerson:
    """A CSV row as a 資格取得届; a ValueError names the line and column (never the value)."""
    def value(column: str) -> str:
        return (row.get(column) or "").strip()

    def parsed(column: str, parse: Any) -> Any:
        try:
            return parse(value(column))
        except ValueError:
            raise ValueError(f"line {line}: {column}: not valid") from None

    limit = value("limit_category")
    return NewInsuredPerson(
        symbol=value("symbol"), number=value("number"), branch=value("branch"),
        insured_kind=parsed("insured_kind", InsuredKind),
        acquired_on=parsed("acquired_on", dt.date.fromisoformat),
        copay_percent=parsed("copay_percent", int),
        items=PersonItems(name=value("name"), name_kana=value("name_kana"),
                          birth_date=value("birth_date"), sex=value("sex"),
                          address=value("address")),
        elderly_recipient=_bool(value("elderly_recipient"), line),
        limit_category=parsed("limit_category", LimitCategory) if limit else None)


def _enrol_csv(container: Any, insurer: str, path: Path) -> None:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}",
             code=2)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        fail(f"{path}: the header lacks {', '.join(missing)} (columns: "
             f"{', '.join(CSV_COLUMNS)})", code=2)
    enrolled: list[int] = []
    refused: list[dict[str, Any]] = []
    for line, row in enumerate(reader, start=2):
        try:
            person = _person_from_row(row, line)
        except ValueError as exc:
            refused.append({"line": line, "code": "insurance_invalid_input", "detail": str(exc)})
            continue
        try:
            done = container.insurance.enrol(insurer, person, _actor(insurer))
        except DomainError as exc:  # each line on its own: one bad line stops nothing
            refused.append({"line": line, "code": exc.code,
                            **({"field": exc.field} if exc.field else {})})
            continue
        enrolled.append(done.id)
    _print({"insurer": insurer, "enrolled": len(enrolled), "qualification_ids": enrolled,
            "refused": refused})
    if refused:
        raise typer.Exit(1)


#: The personal items ``enrol`` and ``reviews resolve`` read (prompt, or standard input one a
#: line in this order): never command-line options (the shell's history, the process list).
ITEM_PROMPTS = (("name", "氏名"), ("name_kana", "氏名 (カナ)"),
                ("birth_date", "生年月日 (YYYY-MM-DD)"), ("sex", "性別 (male / female)"),
                ("address", "住所"))
MAX_ITEM_LINE = 400


def _interactive() -> bool:
    return sys.stdin.isatty()


def _read_items(what: str) -> PersonItems:
    """The four basic items (氏名, カナ, 生年月日, 性別, 住所): asked one by one on a terminal
    (prompts on standard error; empty: missing), else read from standard input, one a line
    in the order of :data:`ITEM_PROMPTS` (a missing line: an empty item). Never echoed."""
    values: dict[str, str] = {}
    interactive = _interactive()
    if interactive:
        typer.echo(f"{what}: enter each item (leave empty if unknown)", err=True)
    for field, label in ITEM_PROMPTS:
        if interactive:
            text = typer.prompt(label, default="", show_default=False, err=True)
        else:
            text = sys.stdin.readline()
        text = text.strip()
        if len(text) > MAX_ITEM_LINE:
            fail(f"{field}: at most {MAX_ITEM_LINE} characters", code=2)
        values[field] = text
    return PersonItems(**values)


@app.command("enrol")
def enrol(
    insurer: InsurerOption,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="enrol every row of this CSV (UTF-8, a header naming the columns "
        f"{', '.join(CSV_COLUMNS)}; - reads standard input) instead of one person")] = None,
    symbol: Annotated[str, typer.Option(help="記号")] = "",
    number: Annotated[str, typer.Option(help="番号")] = "",
    branch: Annotated[str, typer.Option(help="枝番 (2 digits)")] = "",
    insured_kind: Annotated[InsuredKind, typer.Option(help="本人 insured / 家族 dependent")]
    = InsuredKind.INSURED,
    acquired_on: Annotated[str, typer.Option(help="資格取得日 (YYYY-MM-DD)")] = "",
    copay: Annotated[int, typer.Option(help="一部負担金割合 (10, 20, 30)")] = 30,
    elderly: Annotated[bool, typer.Option(help="高齢受給者")] = False,
    limit_category: Annotated[LimitCategory | None, typer.Option(help="限度額適用区分")]
    = None,
) -> None:
    """資格取得: enrol one insured person (unlinked), or every row of a CSV (--csv). For one
    person the personal items (氏名, カナ, 生年月日, 性別, 住所) are asked at a prompt, or read
    from standard input one a line in that order: never options. Exit status 1 when any CSV
    row was refused (each listed by line and code)."""
    container = container_from_env()
    if csv_file is not None:
        _enrol_csv(container, insurer, csv_file)
        return
    if not number or not branch or not acquired_on:
        fail("--number, --branch and --acquired-on are required (or give --csv)", code=2)
    day = _date(acquired_on, "--acquired-on")
    person = NewInsuredPerson(
        symbol=symbol, number=number, branch=branch, insured_kind=insured_kind,
        acquired_on=day, copay_percent=copay, items=_read_items("the insured person"),
        elderly_recipient=elderly, limit_category=limit_category)
    try:
        done = container.insurance.enrol(insurer, person, _actor(insurer))
    except DomainError as exc:
        _fail_domain(exc, 2)
    _print(_plain(done))


@app.command("persons")
def persons(
    insurer: InsurerOption,
    state: Annotated[LinkState | None, typer.Option(help="only records in this link state")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most 1,000 at a time")]
    = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """The insurer's records (e.g. --state unlinked: the ones still to link)."""
    container = container_from_env()
    try:
        found = container.insurance.qualifications(insurer, state=state, limit=limit,
                                                   offset=offset)
    except DomainError as exc:
        _fail_domain(exc)
    _print(_plain(found))


def _read_number() -> str:
    """The 個人番号 from standard input (hidden when it is a terminal); first line only."""
    if sys.stdin.isatty():
        import getpass

        text = getpass.getpass("個人番号 (not shown): ")
    else:
        text = sys.stdin.readline()
    number = text.strip()
    if not number:
        fail("no individual number given: write it to standard input", code=2)
    return number


@app.command("link")
def link(
    qualification_id: Annotated[int, typer.Argument(help="the record's id")],
    insurer: InsurerOption,
    route: Annotated[LinkRoute, typer.Option(
        help="search: 住基ネット's search on all four items of the record; number: the "
             "個人番号 the insured person gave, read from standard input, checked against "
             "the four items")] = LinkRoute.SEARCH,
) -> None:
    """紐付け on all four items. A near-miss opens a review item (exit status 1), never a
    link."""
    container = container_from_env()
    try:
        if route is LinkRoute.NUMBER:
            result = container.insurance.link_by_number(insurer, qualification_id,
                                                        _read_number(), _actor(insurer))
        else:
            result = container.insurance.link_by_search(insurer, qualification_id,
                                                        _actor(insurer))
    except DomainError as exc:
        _fail_domain(exc)
    _print(_plain(result))
    if result.state is not LinkState.LINKED:
        raise typer.Exit(1)


@app.command("lose")
def lose(
    qualification_id: Annotated[int, typer.Argument(help="the record's id")],
    insurer: InsurerOption,
    lost_on: Annotated[str, typer.Option(help="資格喪失日: the first day not covered "
                                              "(YYYY-MM-DD)")],
    reason: Annotated[LossReason, typer.Option(help="喪失事由")],
) -> None:
    """資格喪失."""
    container = container_from_env()
    try:
        done = container.insurance.lose(insurer, qualification_id,
                                        _date(lost_on, "--lost-on"), reason, _actor(insurer))
    except DomainError as exc:
        _fail_domain(exc)
    _print(_plain(done))


# --- the review queue, the re-check, documents -----------------------------------------------


@reviews_app.command("list")
def reviews_list(
    insurer: InsurerOption,
    all_items: Annotated[bool, typer.Option("--all", help="resolved items too")] = False,
) -> None:
    """The review queue (open items by default), with reason codes and differing items."""
    container = container_from_env()
    try:
        found = container.insurance.reviews(insurer, open_only=not all_items)
    except DomainError as exc:
        _fail_domain(exc)
    _print(_plain(found))


@reviews_app.command("resolve")
def reviews_resolve(
    review_id: Annotated[int, typer.Argument(help="the review item's id")],
    insurer: InsurerOption,
    resolution: Annotated[ReviewResolution, typer.Option(
        help="corrected: the record's four items corrected (asked at a prompt, or read from "
             "standard input one a line: 氏名, カナ, 生年月日, 性別, 住所), then linked by a "
             "four-item search; dismissed: not this person, stays unlinked")],
) -> None:
    """Resolve a review item."""
    corrected = None
    if resolution is ReviewResolution.CORRECTED:
        corrected = _read_items("the corrected items")
    container = container_from_env()
    try:
        done = container.insurance.resolve_review(insurer, review_id, resolution,
                                                  _actor(insurer), corrected=corrected)
    except DomainError as exc:
        _fail_domain(exc)
    _print(_plain(done))


@app.command("recheck")
def recheck(
    insurer: Annotated[str | None, typer.Option("--insurer", help="only this insurer's links "
                                                                  "(default: every insurer)")]
    = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="records per transaction "
                                                              "(1-10,000)")]
    = 1000,
) -> None:
    """The mass re-check: compare every link with 住基ネット; block any mismatch (nothing is
    shown for it until the insurer resolves the review item). Exit status 1 if any was
    blocked."""
    container = container_from_env()
    try:
        report = container.insurance.recheck(insurer, batch=batch)
    except DomainError as exc:
        _fail_domain(exc)
    _print(_plain(report))
    if report.blocked:
        raise typer.Exit(1)


@app.command("issue-documents")
def issue_documents(
    insurer: Annotated[str | None, typer.Option("--insurer", help="only this insurer "
                                                                  "(default: every insurer)")]
    = None,
    today: Annotated[str | None, typer.Option(help="the issue date (YYYY-MM-DD); default: "
                                                   "today in Japan")] = None,
    years: Annotated[int, typer.Option(min=1, max=5, help="validity of a 資格確認書")] = 5,
) -> None:
    """Without application: a 資格確認書 for each current insured person without an activated
    card, a 資格情報のお知らせ for each with one (one document at a time)."""
    container = container_from_env()
    day = _date(today, "--today") if today else None
    try:
        counts = container.insurance.issue_documents(insurer, today=day, years=years)
    except DomainError as exc:
        _fail_domain(exc)
    _print({kind.value: int(counts.get(kind, 0)) for kind in CoverageDocumentKind})


# --- terminals ---------------------------------------------------------------------------------


def sandbox_terminal_certificate(key: Ed25519PrivateKey, institution_code: str,
                                 institution_name: str, *, days: int = 365,
                                 now: dt.datetime | None = None) -> str:
    """A self-signed X.509 certificate (PEM) for a sandbox terminal's Ed25519 key: what
    ``terminal keygen`` writes and the tests register. Never a production credential."""
    moment = now or dt.datetime.now(dt.UTC)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, institution_name[:64]),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "sandbox terminal"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{institution_code} terminal"),
    ])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(moment - dt.timedelta(minutes=5))
        .not_valid_after(moment + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, None))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _terminal_out(terminal: Any) -> dict[str, Any]:
    out: dict[str, Any] = _plain(terminal)  # the certificate is left out (it is long)
    return out


@terminal_app.command("register")
def terminal_register(
    institution_code: Annotated[str, typer.Option(help="医療機関コード (10 digits)")],
    institution_name: Annotated[str, typer.Option(help="the institution's name")],
    certificate: Annotated[Path, typer.Option(help="the terminal's certificate (PEM)")],
) -> None:
    """Register a terminal with its certificate; prints the terminal id its requests name."""
    try:
        pem = certificate.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--certificate: cannot read {certificate} "
             f"({getattr(exc, 'strerror', None) or 'not a PEM file'})", code=2)
    container = container_from_env()
    try:
        terminal = container.eligibility.register_terminal(institution_code, institution_name,
                                                           pem, CLI_ACTOR)
    except DomainError as exc:
        _fail_domain(exc, 2)
    _print(_terminal_out(terminal))


@terminal_app.command("keygen")
def terminal_keygen(
    out_dir: Annotated[Path, typer.Option(help="where to write terminal.key and "
                                               "terminal.crt")],
    institution_code: Annotated[str, typer.Option(help="医療機関コード (10 digits)")],
    institution_name: Annotated[str, typer.Option(help="the institution's name")],
    register: Annotated[bool, typer.Option(help="also register the terminal")] = False,
    days: Annotated[int, typer.Option(min=1, max=3650, help="certificate validity")] = 365,
) -> None:
    """Demo: a sandbox terminal's Ed25519 key (terminal.key, PKCS#8 PEM, owner-only) and a
    self-signed certificate (terminal.crt). Refused in production."""
    refuse_in_production("insurance terminal keygen",
                         "A real terminal makes its key itself and brings its certificate "
                         "to `mynumber insurance terminal register`.")
    from mynumber.keys.files import KeyFileError, write_owner_only

    key_path, cert_path = out_dir / "terminal.key", out_dir / "terminal.crt"
    if key_path.exists() or cert_path.exists():
        fail(f"{out_dir}: terminal.key or terminal.crt exists already; choose another "
             "directory", code=2)
    key = Ed25519PrivateKey.generate()
    pem = sandbox_terminal_certificate(key, institution_code, institution_name, days=days)
    try:
        write_owner_only(key_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    except KeyFileError as exc:
        fail(str(exc), code=2)
    cert_path.write_text(pem, encoding="ascii")
    out: dict[str, Any] = {"private_key": str(key_path), "certificate": str(cert_path)}
    if register:
        container = container_from_env()
        try:
            terminal = container.eligibility.register_terminal(
                institution_code, institution_name, pem, CLI_ACTOR)
        except DomainError as exc:
            _fail_domain(exc, 2)
        out["terminal"] = _terminal_out(terminal)
    _print(out)


@terminal_app.command("list")
def terminal_list() -> None:
    """Every terminal with its operators (without certificates)."""
    _print([_terminal_out(t) for t in container_from_env().eligibility.terminals()])


def _set_status(terminal_id: str, status: TerminalStatus) -> None:
    container = container_from_env()
    try:
        terminal = container.eligibility.set_terminal_status(terminal_id, status, CLI_ACTOR)
    except DomainError as exc:
        _fail_domain(exc)
    _print(_terminal_out(terminal))


@terminal_app.command("suspend")
def terminal_suspend(terminal_id: Annotated[str, typer.Argument(help="the terminal id")]
                     ) -> None:
    """Suspend a terminal: its requests are refused."""
    _set_status(terminal_id, TerminalStatus.SUSPENDED)


@terminal_app.command("activate")
def terminal_activate(terminal_id: Annotated[str, typer.Argument(help="the terminal id")]
                      ) -> None:
    """Reactivate a suspended terminal."""
    _set_status(terminal_id, TerminalStatus.ACTIVE)


@terminal_app.command("operators")
def terminal_operators(
    terminal_id: Annotated[str, typer.Argument(help="the terminal id")],
    operators: Annotated[list[str] | None, typer.Argument(
        help="the staff user names who may use the terminal from the reception pages "
             "(replaces the list; none given: print it)")] = None,
    clear: Annotated[bool, typer.Option(help="nobody may use it from the pages")] = False,
) -> None:
    """Who (staff sign-in user names) may use the terminal from the reception pages."""
    if operators and clear:
        fail("give user names or --clear, not both", code=2)
    eligibility = container_from_env().eligibility
    try:
        if operators or clear:
            terminal = eligibility.set_terminal_operators(terminal_id, list(operators or ()),
                                                          CLI_ACTOR)
        else:
            terminal = eligibility.terminal(terminal_id)
    except DomainError as exc:
        _fail_domain(exc, 2 if exc.status == 422 else 1)
    _print({"terminal_id": terminal.id, "operators": list(terminal.operators)})
