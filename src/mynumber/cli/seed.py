"""`mynumber seed`: a synthetic population and, in embedded mode, the demo staff."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from mynumber.cli.common import (
    LongWork,
    console,
    container_from_env,
    database_errors,
    fail,
    refuse_in_production,
)


def seed(
    residents: Annotated[int | None, typer.Option(
        help="how many residents (default: MYNUMBER_SEED_RESIDENTS, 10,000)", min=0)] = None,
    if_empty: Annotated[bool, typer.Option(
        "--if-empty", help="do nothing if the registry already has residents")] = False,
    seed_value: Annotated[int | None, typer.Option(
        "--seed", help="random seed: the same seed (and --as-of) gives the same people")] = None,
    as_of: Annotated[str | None, typer.Option(
        help="date the ages are counted from, YYYY-MM-DD (default: today)")] = None,
    cards: Annotated[bool, typer.Option(
        "--cards/--no-cards", help="give about 75% of the seeded residents a card on pooled "
        "test keys (embedded mode only; see mynumber.card.seed)")] = True,
) -> None:
    """Seed a synthetic population (Faker ja_JP), the demo staff and the demo API client
    (embedded mode only: production mode refuses it)."""
    # A synthetic population must never be mixed into a production registry: refused before
    # any database is opened or key read.
    refuse_in_production("`mynumber seed`")
    with database_errors():
        _seed(residents, if_empty, seed_value, as_of, cards)


def _seed(residents: int | None, if_empty: bool, seed_value: int | None, as_of: str | None,
          cards: bool) -> None:
    from mynumber.errors import DomainError
    from mynumber.registry.seed import DEFAULT_SEED, DEMO_STAFF, run_seed
    from mynumber.settings import Mode

    reference = None
    if as_of:
        try:
            reference = dt.date.fromisoformat(as_of)
        except ValueError:
            fail("--as-of must be a date written YYYY-MM-DD", code=2)
    container = container_from_env()
    if container.settings.mode is not Mode.EMBEDDED:  # defence in depth
        container.close()
        fail("seed is for the embedded (development) mode only; production mode refuses it",
             code=2)
    count = container.settings.seed_residents if residents is None else residents
    network_result = None
    portal_result = None
    insurance_result = None
    try:
        with LongWork("seeding residents", total=count) as work:
            result = run_seed(
                container, count, seed=DEFAULT_SEED if seed_value is None else seed_value,
                if_empty=if_empty, as_of=reference, progress=work,
            )
        card_result = None
        if cards and not result.skipped:
            from mynumber.card.seed import seed_cards
            from mynumber.registry.seed import current_residents

            with LongWork("seeding cards") as work:
                card_result = seed_cards(
                    container, current_residents(container.databases),
                    seed=DEFAULT_SEED if seed_value is None else seed_value, progress=work,
                )
        if not result.skipped:
            from mynumber.agencies.seed import seed_exchanges
            from mynumber.registry.seed import current_residents

            with LongWork("seeding exchanges") as work:
                network_result = seed_exchanges(
                    container, current_residents(container.databases),
                    seed=DEFAULT_SEED if seed_value is None else seed_value, progress=work,
                )
            from mynumber.portal.seed import seed_portal_demo

            portal_result = seed_portal_demo(container)
        # デジタル庁 answers agencies' 公金受取口座 look-ups through the network: its keys are
        # registered as the demo agencies' are (production: `mynumber network register-keys
        # digital_agency`, docs/accounts.md). Idempotent, so an older database gets them too.
        from mynumber.accounts.interfaces import DIGITAL_AGENCY

        container.agencies.ensure_registered(DIGITAL_AGENCY)
        for dispatcher in container.dispatchers:
            # What the registry (then the accounts context) published while seeding reaches
            # every subscriber now, as the serving process would deliver it (docs/events.md).
            with LongWork(f"delivering {dispatcher.outbox.context} events") as work:
                work(dispatcher.drain())
        # Insurers and insured persons (オンライン資格確認): after the events, so that 住基ネット's
        # copy holds every resident their records are linked to by a four-item search.
        # Idempotent (nothing is enrolled twice).
        insurance_result = _seed_insurance(
            container, DEFAULT_SEED if seed_value is None else seed_value)
        from mynumber.portal.oauth import demo_client_id, seed_demo_client

        demo_client = seed_demo_client(container.api_clients)
        existing_demo = demo_client_id(container.api_clients) if demo_client is None else None
    except DomainError as exc:
        fail(str(exc))
    finally:
        container.close()
    if demo_client is not None:
        console.print(f"demo API client {demo_client.name}: client_id {demo_client.client_id} "
                      f"client_secret {demo_client.client_secret} "
                      f"(redirect {demo_client.redirect_uris[0]})")
    elif existing_demo is not None:
        console.print(f"demo API client: client_id {existing_demo} (its secret was shown when "
                      f"it was created; `.venv/bin/mynumber api-clients rotate-secret "
                      f"{existing_demo}` prints a new one)")
    if result.skipped:
        console.print(f"{result.existing:,} residents already registered: nothing seeded")
    else:
        kinds: dict[str, int] = {}
        for case in result.hard_cases:
            kinds[case.kind] = kinds.get(case.kind, 0) + 1
        console.print(
            f"seeded {result.created:,} residents in {result.households:,} households "
            f"in {result.seconds:.1f} s (hard cases: "
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")"
        )
    if card_result is not None:
        console.print(
            f"seeded {card_result.cards:,} cards ({card_result.signing_certificates:,} signing "
            f"and {card_result.auth_certificates:,} auth certificates on "
            f"{card_result.pool_size} pooled test keys, marked POOLED-TEST-KEY-SEED-ONLY) "
            f"in {card_result.seconds:.1f} s"
        )
    if network_result is not None:
        outcomes = ", ".join(f"{n:,} {k}" for k, n in sorted(network_result.outcomes.items()))
        console.print(
            f"seeded {network_result.enrolments:,} agency codes at {network_result.agencies} "
            f"agencies, {network_result.copies:,} copies, {network_result.exchanges:,} exchanges "
            f"({outcomes}; {network_result.restricted} restricted), "
            f"{network_result.declined} applications without a number; access log size "
            f"{network_result.log_size:,}, in {network_result.seconds:.1f} s"
        )
    if portal_result is not None:
        for line in portal_result.lines():
            console.print(line)
    if insurance_result is not None:
        console.print(insurance_result.line())
    if result.staff_created:
        console.print(f"demo staff created: {', '.join(result.staff_created)} "
                      "(password and one-time code: see the README)")
    elif container.settings.mode is Mode.EMBEDDED:
        console.print(f"demo staff present: {', '.join(d.username for d in DEMO_STAFF)}")


def _seed_insurance(container: Any, seed_value: int) -> Any:
    """The demo's insurers and insured persons (``mynumber.insurance.seed``), through the
    insurer service of the container (built here when the container wires none)."""
    from mynumber.insurance.seed import seed_insurance
    from mynumber.registry.seed import SEED_ACTOR, current_residents

    if container.has("insurance"):
        insurer = container.insurance
    else:
        from mynumber.insurance.adapters import JpkiCardUsability, RegistryLinks
        from mynumber.insurance.services import InsurerServiceImpl

        insurer = InsurerServiceImpl(container.databases, container.juki, container.network,
                                     RegistryLinks(container.registry),
                                     cards=JpkiCardUsability(container.jpki))
    residents = current_residents(container.databases)
    with LongWork("seeding insurance", total=len(residents)) as work:
        return seed_insurance(
            insurer, container.network, container.settings, residents,
            number_of=lambda rid: container.registry.number_for_purpose(
                rid, "seed: the number an insured person gave their insurer", SEED_ACTOR),
            seed=seed_value, progress=work,
            # Synthetic clinical lines through the eligibility service, when this role has it.
            record_clinical=(container.eligibility.record_clinical
                             if container.has("eligibility") else None))
