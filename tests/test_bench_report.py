"""bench/report.py: paired ratios, verdicts and what the report says when a part is missing or short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import report


def write_part(data: Path, part: str, rows: list[tuple[str, str, int, float, str]], status: str) -> None:
    data.mkdir(parents=True, exist_ok=True)
    lines = ["metric\tsubject\trun\tvalue\tunit"] + ["\t".join(map(str, r)) for r in rows]
    (data / f"{part}.tsv").write_text("\n".join(lines) + "\n")
    (data / f"{part}.status").write_text(status + "\n")


def render(tmp_path: Path, data: Path) -> str:
    out = tmp_path / "results.md"
    assert report.main(["--data", str(data), "--out", str(out), "--chart", str(tmp_path / "latency.png")]) == 0
    return out.read_text()


def test_ratios_pair_runs_of_the_same_round(tmp_path: Path) -> None:
    # Round 3 of the bottom subject is missing: its top value must not be paired with anything.
    write_part(
        tmp_path,
        "service",
        [
            ("rps", "a", 1, 90, "req/s"),
            ("rps", "a", 2, 50, "req/s"),
            ("rps", "a", 3, 10, "req/s"),
            ("rps", "b", 1, 100, "req/s"),
            ("rps", "b", 2, 100, "req/s"),
            ("rps", "b", 0, 7, "req/s"),  # run 0 holds settings, never a round
        ],
        "measured",
    )
    ratio = report.Records(tmp_path / "service.tsv").paired_ratio("rps", "a", "b")
    assert ratio == report.Summary(median=0.7, low=0.5, high=0.9, n=2)


@pytest.mark.parametrize(
    ("summary", "at_least", "at_most", "expected"),
    [
        (report.Summary(0.91, 0.8, 0.95, 5), 0.90, None, "**met**"),
        (report.Summary(0.89, 0.8, 0.95, 5), 0.90, None, "**missed**"),
        (report.Summary(0.30, 0.2, 0.40, 5), None, 0.30, "**met**"),
        (report.Summary(0.31, 0.2, 0.40, 5), None, 0.30, "**missed**"),
        (report.Summary(0.95, 0.9, 0.99, 1), 0.90, None, "not judged: 1 run(s), fewer than 5"),
        (None, 0.90, None, ""),
    ],
)
def test_a_goal_is_judged_on_the_median_of_enough_runs(
    summary: report.Summary | None, at_least: float | None, at_most: float | None, expected: str
) -> None:
    assert report.verdict(summary, at_least=at_least, at_most=at_most) == expected


def test_the_service_reading_splits_the_distance_from_the_floor() -> None:
    reading = report.service_reading(
        goapp=report.Summary(0.70, 0.6, 0.8, 5),
        gin=report.Summary(0.98, 0.9, 1.05, 5),
        timeouts=report.Summary(0.94, 0.9, 0.95, 5),
        quiet=report.Summary(0.85, 0.8, 0.9, 5),
    )
    assert "goapp as shipped answers 0.700 of the bare floor's requests/s" in reading
    assert "Gin alone accounts for 0.020" in reading
    assert "goapp's timeouts) for 0.060" in reading
    assert "what is left of the distance with no access log) for 0.070" in reading
    assert "JSON access-log line for 0.150" in reading
    assert report.service_reading(report.Summary(0.93, 0.9, 0.95, 5), None, None, None) == "", "nothing to split"


def test_parts_not_measured_say_why_and_judged_figures_show_their_goal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_part(
        data,
        "engine",
        [
            ("preview", "prod", 1, 1.2, "s"),
            ("preview", "floor", 1, 1.0, "s"),
            ("resources", "prod", 0, 11, "resources"),
            ("resources", "floor", 0, 3, "resources"),
        ],
        "measured 2026-11-25T15:00Z",
    )
    (data / "unit-command.txt").write_text("pytest -m unit-selection tests\n")
    (data / "image.status").write_text("not measured: Docker is not available (tools/docker/up.sh: no dockerd)\n")
    out = tmp_path / "results.md"
    assert report.main(["--data", str(data), "--out", str(out), "--chart", str(tmp_path / "latency.png")]) == 0
    text = out.read_text()
    assert "| Engine (Pulumi, render mode) | measured 2026-11-25T15:00Z |" in text
    assert "**not measured: Docker is not available (tools/docker/up.sh: no dockerd)**" in text
    assert "| Service (wrk on loopback) | not measured: not run yet (python -m bench.run service) |" in text
    assert "| **Preview of prod ÷ one-resource floor** (wall time) | 1.200 | 1.200 | 1.200 | 1 | ≤ 1.25 |" in text
    assert "not judged: 1 run(s), fewer than 5" in text
    assert "Unit suite: `pytest -m unit-selection tests`" in text
    assert not (tmp_path / "latency.png").exists(), "no service data, so no chart"


def test_the_service_goals_are_judged_on_seven_rounds_and_instructions_are_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rows = []
    for run in range(1, 8):
        rows += [
            ("rps", "goapp-hello", run, 1000.0, "req/s"),
            ("rps", "tutorial-hello", run, 900.0, "req/s"),
            ("rps", "timeouts-hello", run, 1050.0, "req/s"),
            ("rps", "baseline-hello", run, 1100.0, "req/s"),
        ]
    for run in range(1, 4):
        rows += [
            ("instructions", "goapp-hello", run, 51000.0 + run, "instructions/request"),
            ("instructions", "tutorial-hello", run, 56000.0, "instructions/request"),
            ("instructions", "timeouts-hello", run, 43000.0, "instructions/request"),
        ]
    write_part(data, "service", rows, "measured 2026-12-05T10:00Z")
    text = render(tmp_path, data)
    assert re.search(
        r"^\| \*\*/hello requests/s, goapp ÷ the tutorial's server\*\* \| 1\.111 .*\| ≥ 1\.20 \| \*\*missed\*\* \|$",
        text,
        re.M,
    )
    assert re.search(
        r"^\| \*\*/hello requests/s, goapp ÷ net/http with goapp's deadlines\*\* \| 0\.952 .*"
        r"\| ≥ 0\.90 \| \*\*met\*\* \|$",
        text,
        re.M,
    )
    assert re.search(
        r"^\| Instructions per /hello, goapp, as shipped \| 51,002 \| 51,001 \| 51,003 \| 3 \|", text, re.M
    )
    assert re.search(
        r"^\| Instructions per /hello, goapp ÷ the tutorial's server \(lower is cheaper\) \| 0\.911 ", text, re.M
    )
    six = [r for r in rows if not (r[0] == "rps" and r[2] == 7)]
    write_part(data, "service", six, "measured 2026-12-05T10:00Z")
    assert "not judged: 6 run(s), fewer than 7" in render(tmp_path, data)
