"""`make bench` works end to end: one short round of every part but the cluster's (e2e deploys to the cluster),
written to a temporary directory so the published bench/ report is never touched. The figures of so short a run
mean nothing and are not judged; what is checked is that each part measures, records and reports."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = [sys.executable, "-m", "bench.run"]
PARTS = ("service", "image", "engine", "go")

pytestmark = pytest.mark.bench


def published() -> dict[str, str]:
    """Every file under bench/ (the report, the chart, the raw data) by content."""
    bench = REPO_ROOT / "bench"
    return {
        str(path.relative_to(bench)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in bench.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    before = published()
    env = os.environ | {
        "BENCH_OUT": str(out),
        "BENCH_RUNS": "1",
        "BENCH_SERVICE_RUNS": "1",
        "BENCH_CALLGRIND_ROUNDS": "1",
        "BENCH_CALLGRIND_REQUESTS": "200,1200",
        "BENCH_IMAGE_RUNS": "1",
        "BENCH_DURATION": "1s",
        "BENCH_WARMUP": "1s",
        "BENCH_GO_COUNT": "1",
        "BENCH_GO_BENCHTIME": "20x",
    }
    for part in PARTS:
        done = subprocess.run([*BENCH, part], env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"python -m bench.run {part} failed:\n{done.stderr[-3000:]}"
    assert published() == before, "a run with BENCH_OUT set changed files under bench/"
    return out


def test_every_part_run_is_measured_and_the_cluster_says_it_was_not(results: Path) -> None:
    text = (results / "results.md").read_text()
    for title in ("Service (wrk on loopback)", "Image", "Engine (Pulumi, render mode)", "Go benchmarks"):
        assert re.search(rf"^\| {re.escape(title)} \| measured \d{{4}}-\d\d-\d\dT\d\d:\d\dZ \|$", text, re.M), title
    assert "| Local cluster | not measured: not run yet (python -m bench.run cluster) |" in text


@pytest.mark.parametrize(
    "figure",
    [
        r"\*\*/hello requests/s, goapp ÷ the tutorial's server\*\*",
        r"\*\*/hello requests/s, goapp ÷ net/http with goapp's deadlines\*\*",
        r"/hello requests/s, goapp ÷ baseline \(bare net/http\)",
        r"Instructions per /hello, goapp ÷ the tutorial's server \(lower is cheaper\)",
        r"Instructions per /hello, goapp ÷ net/http with deadlines \(lower is cheaper\)",
        r"/hello requests/s, bare Gin \(router only, no middleware\) ÷ baseline",
        r"/hello requests/s, bare net/http with goapp's server timeouts ÷ baseline",
        r"/hello requests/s, goapp with LOG_LEVEL=warn \(no access log\) ÷ baseline",
        r"PUT /notes/:name requests/s ÷ goapp /hello",
        r"\*\*Warm rebuild ÷ cold build\*\* \(wall time\)",
        r"\*\*Preview of prod ÷ one-resource floor\*\* \(wall time\)",
        r"Preview of 5 services ÷ 1 service",
        r"Preview of 20 services ÷ 1 service",
        r"Cost of each added service ÷ preview of 1 service \(from 20\)",
    ],
)
def test_each_ratio_is_a_positive_number_from_one_paired_round(results: Path, figure: str) -> None:
    text = (results / "results.md").read_text()
    found = re.search(rf"^\| {figure} \| ([0-9.]+) \| [0-9.]+ \| [0-9.]+ \| 1 \|", text, re.M)
    assert found, f"no measured row for {figure}"
    assert float(found[1]) > 0


def test_short_runs_are_not_judged_but_the_image_size_is(results: Path) -> None:
    text = (results / "results.md").read_text()
    assert "not judged: 1 run(s), fewer than 5" in text
    size = re.search(
        r"^\| \*\*Final image size ÷ stripped binary\*\* \| ([0-9.]+) \|.*\| (\*\*met\*\*|\*\*missed\*\*) \|$",
        text,
        re.M,
    )
    assert size, "no judged image-size row"
    assert 1.0 <= float(size[1]) < 2.0, "the image holds the binary plus a little"


def test_the_chart_and_the_benchstat_file_are_written(results: Path) -> None:
    assert (results / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [line for line in (results / "go-bench.txt").read_text().splitlines() if line.startswith("Benchmark")]
    assert any(line.startswith("BenchmarkHello-") for line in lines), "goapp's handler benchmarks ran"
    assert all(re.search(r" ns/op\s.* allocs/op$", line) for line in lines), "benchstat needs -benchmem lines"
    assert "-benchtime 20x -count 1" in (results / "results.md").read_text()


def test_the_deadline_floor_and_goapp_get_goapps_shipped_timeouts() -> None:
    """bench/run.py passes its timeouts to goapp and to the deadline floor alike; they must stay goapp's defaults,
    or goapp would no longer be measured as shipped."""
    from bench.run import SERVER_TIMEOUTS

    config = (REPO_ROOT / "goapp" / "internal" / "config" / "config.go").read_text()
    units = {"Millisecond": "ms", "Second": "s", "Minute": "m"}
    shipped = {
        re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower() + "-timeout": f"{amount}{units[unit]}"
        for name, amount, unit in re.findall(r"^\s*Default(\w+)Timeout\s*=\s*(\d+) \* time\.(\w+)$", config, re.M)
        if name != "Shutdown"
    }
    assert set(shipped) == {"read-header-timeout", "read-timeout", "write-timeout", "idle-timeout"}, shipped
    assert shipped == SERVER_TIMEOUTS
