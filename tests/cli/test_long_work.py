"""Long work shows progress (issue 13): a bar on a terminal; elsewhere a line now and then and
one at the end, so `make run` in a log is never silent for minutes."""

from __future__ import annotations

import io

from mynumber.cli.common import LongWork


def test_without_a_terminal_it_prints_a_line_now_and_then_and_at_the_end() -> None:
    out = io.StringIO()
    with LongWork("seeding residents", total=1000, every=0.0, stream=out) as work:
        for done in (250, 500, 1000):
            work(done)
    lines = out.getvalue().splitlines()
    assert lines[0] == "seeding residents ..."
    assert lines[1].startswith("seeding residents: 250 / 1,000 (25%), ")
    assert lines[-1].startswith("seeding residents: 1,000 / 1,000 (100%), ")
    assert lines[-1].endswith(" (done)")


def test_a_total_learnt_on_the_way_and_bytes() -> None:
    out = io.StringIO()
    with LongWork("importing", in_bytes=True, every=0.0, stream=out) as work:
        work(1_500_000, 3_000_000)
    assert "importing: 1.5 MB / 3.0 MB (50%)" in out.getvalue()


def test_nothing_is_printed_between_the_intervals() -> None:
    out = io.StringIO()
    with LongWork("exchanges", every=3600.0, stream=out) as work:
        for done in range(100):
            work(done)
    assert len(out.getvalue().splitlines()) == 2  # the start and the end only


def test_machine_output_gets_no_progress_lines() -> None:
    out = io.StringIO()
    with LongWork("verifying the log", every=0.0, stream=out, quiet=True) as work:
        work(10, 10)
    assert out.getvalue() == ""


def test_work_that_counts_nothing_shows_only_its_time() -> None:
    out = io.StringIO()
    with LongWork("warming up", every=0.0, stream=out):
        pass
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("warming up: ") and last.endswith(" s (done)")
    assert not last.startswith("warming up: 0,") and ": 0, " not in last
