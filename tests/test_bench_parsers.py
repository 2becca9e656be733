"""bench/parsers.py on raw data the benchmark kept and on what /proc prints. Exact figures are checked on copies
frozen in tests/data/bench/ (every `make bench` rewrites bench/data/); the live bench/data/ must parse too."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import parsers
from bench.parsers import ParseError

DATA = Path(__file__).resolve().parent.parent / "bench" / "data"
FROZEN = Path(__file__).resolve().parent / "data" / "bench"


def test_a_kept_wrk_run_parses_to_its_summary() -> None:
    run = parsers.parse_wrk((FROZEN / "wrk-goapp-hello.txt").read_text())
    assert run.requests == 477202
    assert run.duration_us == 10001981
    assert run.failed == 0
    assert run.rps == pytest.approx(477202 / 10.001981)
    assert run.latency_us[50.0] == 1348
    assert min(run.latency_us) == 1.0
    assert max(run.latency_us) == 100.0


def test_every_kept_wrk_run_parses() -> None:
    files = sorted((DATA / "wrk").glob("*.txt"))
    assert len(files) >= 35, "five rounds of seven subjects are kept"
    for path in files:
        run = parsers.parse_wrk(path.read_text())
        assert run.requests > 0, path.name
        assert run.failed == 0, path.name


def test_wrk_errors_are_counted_and_missing_lines_named() -> None:
    text = "BENCH requests 10\nBENCH duration_us 1000000\nBENCH errors connect=0 read=1 write=0 status=3 timeout=0\n"
    assert parsers.parse_wrk(text).failed == 4
    with pytest.raises(ParseError, match="no BENCH requests/duration_us/errors"):
        parsers.parse_wrk("Running 10s test @ http://127.0.0.1/hello\n")
    with pytest.raises(ParseError, match="lacks timeout"):
        parsers.parse_wrk("BENCH requests 1\nBENCH duration_us 1\nBENCH errors connect=0 read=0 write=0 status=0\n")


def test_proc_memory_and_load() -> None:
    status = "Name:\tgoapp\nVmPeak:\t  800000 kB\nVmHWM:\t   22148 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n"
    assert parsers.proc_memory(status) == (20480, 22148)
    own = Path("/proc/self/status").read_text()
    rss, hwm = parsers.proc_memory(own)
    assert 0 < rss <= hwm
    assert parsers.load1(Path("/proc/loadavg").read_text()) >= 0
    with pytest.raises(ParseError, match="VmRSS"):
        parsers.proc_memory("Name:\tzombie\n")
    with pytest.raises(ParseError, match="loadavg"):
        parsers.load1("")


def test_benchstat_tables_match_the_benchmarks_they_summarise() -> None:
    rows = parsers.parse_benchstat((FROZEN / "go-benchstat.txt").read_text())
    units = {row.unit for row in rows}
    assert {"sec/op", "B/op", "allocs/op"} <= units, units
    first = rows[0]
    assert (first.package, first.benchmark, first.unit, first.value, first.spread) == (
        "goapp/internal/logging",
        "AccessLine/slog-direct-2",
        "sec/op",
        "2.059µ",
        "7%",
    )
    names = {row.benchmark for row in rows if row.unit == "sec/op"}
    go_bench = (FROZEN / "go-bench.txt").read_text()
    assert {name.removeprefix("Benchmark") for name in parsers.benchmark_names(go_bench)} == names
    assert not any(row.benchmark == "geomean" for row in rows)


def test_the_published_benchstat_table_matches_the_published_benchmarks() -> None:
    rows = parsers.parse_benchstat((DATA / "go-benchstat.txt").read_text())
    names = {row.benchmark for row in rows if row.unit == "sec/op"}
    go_bench = (DATA.parent / "go-bench.txt").read_text()
    assert names
    assert {name.removeprefix("Benchmark") for name in parsers.benchmark_names(go_bench)} == names


def test_a_fresh_preview_counts_what_it_creates() -> None:
    assert parsers.created_resources("Resources:\n    + 18 to create\n\nDuration: 1s\n") == 18
    with pytest.raises(ParseError):
        parsers.created_resources("Resources:\n    18 unchanged\n")
