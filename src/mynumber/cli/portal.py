"""`mynumber portal …`: the portal from the command line.

``login`` and ``history`` sign the portal's login challenge with a virtual card file
(``mynumber card issue-test`` writes one) after its user-authentication PIN, as a card reader
would: with ``--url`` over HTTP against a running server (``/api/v1/portal``), without it
in-process on the environment's databases (MYNUMBER_DATA_DIR / MYNUMBER_DATABASE_URL). A wrong
PIN counts down on the card file, as on the chip.

``proxy register`` / ``proxy revoke`` act as the system staff of the CLI (counter work in the
embedded mode); ``notice send`` lets an agency send an お知らせ to a person it knows by its
宛名番号 (dev/demo, in-process).
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mynumber.cli.common import console, container_from_env, fail, refuse_in_production

if TYPE_CHECKING:
    import httpx

    from mynumber.app import Container

app = typer.Typer(help="マイナポータル: login with a card, history, proxies, API clients.",
                  no_args_is_help=True)
proxy_app = typer.Typer(help="代理人: register or revoke a proxy (as the CLI's system staff).",
                        no_args_is_help=True)
notice_app = typer.Typer(help="お知らせ: send a notice as an agency (dev/demo).",
                         no_args_is_help=True)
app.add_typer(proxy_app, name="proxy")
app.add_typer(notice_app, name="notice")

API = "/api/v1/portal"
CardOpt = Annotated[Path, typer.Option("--card", help="the virtual card file (card.json)")]
PinOpt = Annotated[str, typer.Option("--pin", help="the user-authentication PIN (4 digits)")]
UrlOpt = Annotated[str | None, typer.Option(
    "--url", help="a running server, e.g. http://127.0.0.1:8000 (default: in-process)")]


def _http_client(url: str) -> httpx.Client:
    """The HTTP client for ``--url`` (tests replace this)."""
    import httpx

    return httpx.Client(base_url=url.rstrip("/"), timeout=30.0)


def _sign_challenge(card_path: Path, pin: str, challenge: bytes,
                    container: Container | None) -> tuple[bytes, str]:
    """Sign with the card file's user-authentication key; the PIN counter is saved."""
    from mynumber.card.chip import CardError, VirtualCard

    on_failed = container.card.record_failed_pin if container is not None else None
    try:
        card = VirtualCard.load(card_path, on_failed_pin=on_failed)
    except CardError as exc:
        fail(str(exc))
    try:
        signature = card.sign("auth", pin, challenge)
    except CardError as exc:
        card.save(card_path)  # the counter moved: keep it, as the chip would
        fail(str(exc))
    card.save(card_path)
    return signature, card.certificate("auth").decode()


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    reason = f" ({body['reason']})" if isinstance(body, dict) and body.get("reason") else ""
    detail = body.get("detail", "") if isinstance(body, dict) else ""
    return f"HTTP {response.status_code}: {detail}{reason}"


def _http(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    try:
        response = client.request(method, API + path, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the server: {type(exc).__name__}")
    if response.status_code >= 400:
        fail(_problem_text(response))
    return None if response.status_code == 204 else response.json()


def _http_login(client: httpx.Client, card: Path, pin: str) -> dict[str, Any]:
    challenge = _http(client, "POST", "/login/challenge")
    signature, certificate = _sign_challenge(card, pin, base64.b64decode(challenge["challenge"]),
                                             None)
    session: dict[str, Any] = _http(client, "POST", "/login", json={
        "challenge_id": challenge["challenge_id"],
        "signature": base64.b64encode(signature).decode(), "certificate": certificate})
    return session


def _local_login(container: Container, card: Path, pin: str) -> Any:
    portal = container.portal
    challenge = portal.begin_login()
    signature, certificate = _sign_challenge(card, pin, challenge.challenge, container)
    return portal.complete_login(challenge.challenge_id, signature, certificate)


@app.command("login")
def login(card: CardOpt, pin: PinOpt, url: UrlOpt = None) -> None:
    """Log in with a card: sign the portal's challenge, print the session token."""
    from mynumber.errors import DomainError

    if url:
        with _http_client(url) as client:
            session = _http_login(client, card, pin)
        token, expires = session["token"], session["expires_at"]
    else:
        container = container_from_env()
        try:
            local = _local_login(container, card, pin)
        except DomainError as exc:
            fail(_domain_text(exc))
        finally:
            container.close()
        token, expires = local.token, local.expires_at.isoformat()
    console.print(f"logged in; session ends at the latest {expires}")
    print(token)


def _domain_text(exc: Exception) -> str:
    reason = getattr(exc, "extra", {}).get("reason")
    return f"{getattr(exc, 'detail', str(exc))}" + (f" ({reason})" if reason else "")


def _row(record: dict[str, Any], verdict: str | None) -> str:
    cells = [record["serial"], str(record["occurred_at"])[:19], record["requester_name"],
             record["task_id"], record["provider_name"] or "-", record["item_code"] or "-",
             record["outcome"]]
    if verdict is not None:
        cells.append(verdict)
    return "\t".join(cells)


def _verdict(result: dict[str, Any]) -> str:
    return "verified" if result["verified"] else f"NOT VERIFIED: {result['reason']}"


@app.command("history")
def history(card: CardOpt, pin: PinOpt, url: UrlOpt = None,
            verify: Annotated[bool, typer.Option(
                "--verify", help="check each record's inclusion proof against the signed "
                "tree head")] = False) -> None:
    """やりとり履歴: log in, list every exchange about you (optionally verify each), log out."""
    import dataclasses

    from mynumber.errors import DomainError

    rows: list[str] = []
    header = ["serial", "time", "requester", "task", "provider", "item", "outcome"]
    if verify:
        header.append("inclusion")
    if url:
        with _http_client(url) as client:
            session = _http_login(client, card, pin)
            headers = {"Authorization": f"Bearer {session['token']}"}
            try:
                for entry in _http(client, "GET", "/me/history", headers=headers):
                    record = entry["record"]
                    verdict = _verdict(_http(client, "POST",
                                             f"/me/history/{record['serial']}/verify",
                                             headers=headers)) if verify else None
                    rows.append(_row(record, verdict))
            finally:
                _http(client, "POST", "/logout", headers=headers)
    else:
        container = container_from_env()
        try:
            local = _local_login(container, card, pin)
            try:
                if verify:
                    # In-process there may be no sequencer running: integrate what is queued.
                    while container.network_log.integrate() > 0:
                        pass
                for entry in container.portal.history(local):
                    record = {**dataclasses.asdict(entry.record),
                              "outcome": entry.record.outcome.value}
                    verdict = None
                    if verify:
                        verdict = _verdict(dataclasses.asdict(
                            container.portal.verify_record(local, entry.record.serial)))
                    rows.append(_row(record, verdict))
            finally:
                container.portal.logout(local.token)
        except DomainError as exc:
            fail(_domain_text(exc))
        finally:
            container.close()
    print("\t".join(header))
    for line in rows:
        print(line)
    console.print(f"{len(rows)} record(s); logged out")


@proxy_app.command("register")
def proxy_register(
    principal: Annotated[int, typer.Option(help="resident id of the person represented")],
    proxy: Annotated[int, typer.Option(help="resident id of the proxy")],
    kind: Annotated[str, typer.Option(help="legal_representative or adult_guardian")],
    valid_until: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: open)")] = None,
) -> None:
    """Register a proxy, as the CLI's system staff (development and demos; production
    registers proxies at the counter, /counter/portal/proxies, under a named clerk)."""
    refuse_in_production("`mynumber portal proxy register`")
    from mynumber.errors import DomainError
    from mynumber.portal.interfaces import ProxyKind
    from mynumber.registry.interfaces import SYSTEM

    try:
        proxy_kind = ProxyKind(kind)
    except ValueError:
        fail("--kind must be legal_representative or adult_guardian", code=2)
    until = None
    if valid_until:
        try:
            until = dt.date.fromisoformat(valid_until)
        except ValueError:
            fail("--valid-until must be a date written YYYY-MM-DD", code=2)
    container = container_from_env()
    try:
        person = container.registry.get_resident(SYSTEM, principal, "代理人登録 (CLI)")
        record = container.portal.register_proxy(SYSTEM.actor, principal, proxy, proxy_kind,
                                                 until, principal_name=person.name)
    except DomainError as exc:
        fail(_domain_text(exc))
    finally:
        container.close()
    console.print(f"proxy #{record.proxy_id}: account {record.proxy_account_id} is "
                  f"{record.kind.value} of account {record.principal_account_id}")


@proxy_app.command("revoke")
def proxy_revoke(proxy_id: Annotated[int, typer.Argument(help="the proxy registration")]) -> None:
    """End a proxy registration at once (development and demos; production: the counter)."""
    refuse_in_production("`mynumber portal proxy revoke`")
    from mynumber.errors import DomainError
    from mynumber.registry.interfaces import SYSTEM

    container = container_from_env()
    try:
        record = container.portal.revoke_proxy(SYSTEM.actor, proxy_id)
    except DomainError as exc:
        fail(_domain_text(exc))
    finally:
        container.close()
    console.print(f"proxy #{record.proxy_id} revoked at {record.revoked_at}")


@notice_app.command("send")
def notice_send(
    agency: Annotated[str, typer.Option(help="the sending agency, e.g. municipality-131041")],
    address_number: Annotated[str, typer.Option(help="the agency's 宛名番号 for the person")],
    kind: Annotated[str, typer.Option(help="e.g. child_allowance_status_report, information")],
    title: Annotated[str, typer.Option()],
    body: Annotated[str, typer.Option()],
) -> None:
    """Send an お知らせ as an agency (routed by the core to the portal's code). Development
    and demos only: production agencies send notices through the signed portal API."""
    refuse_in_production("`mynumber portal notice send`")
    from mynumber.errors import DomainError

    container = container_from_env()
    try:
        code = container.agencies.agency_code(agency, address_number)
        notice = container.portal.send_notice(agency, code, kind, title, body)
    except DomainError as exc:
        fail(_domain_text(exc))
    finally:
        container.close()
    console.print(f"notice #{notice.notice_id} from {notice.sender_name} accepted")
