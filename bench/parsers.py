"""Readers of what the benchmark's tools print: wrk (through bench/wrk/bench.lua), /proc, benchstat, the engine.

Pure functions of text, each tested on the raw data kept under bench/data/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


class ParseError(ValueError):
    """Text that is not what the tool prints; the message names the tool and what is missing."""


@dataclass(frozen=True)
class WrkRun:
    requests: int
    duration_us: int
    errors: dict[str, int]
    latency_us: dict[float, int]
    """Latency at each percentile bench.lua prints, in microseconds."""

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def parse_wrk(text: str) -> WrkRun:
    """The `BENCH …` lines bench.lua's `done` prints after wrk's own summary."""
    values: dict[str, str] = {}
    latency: dict[float, int] = {}
    errors: dict[str, int] | None = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] != "BENCH":
            continue
        if fields[1] == "latency_p" and len(fields) == 4:
            latency[float(fields[2])] = int(fields[3])
        elif fields[1] == "errors":
            errors = {key: int(value) for key, _, value in (f.partition("=") for f in fields[2:])}
        else:
            values[fields[1]] = fields[2]
    if "requests" not in values or "duration_us" not in values or errors is None:
        raise ParseError("wrk: no BENCH requests/duration_us/errors lines (was wrk run with bench/wrk/bench.lua?)")
    missing = [kind for kind in ERROR_KINDS if kind not in errors]
    if missing:
        raise ParseError(f"wrk: the BENCH errors line lacks {', '.join(missing)}")
    return WrkRun(int(values["requests"]), int(values["duration_us"]), errors, latency)


def proc_memory(status: str) -> tuple[int, int]:
    """Resident set size now and at its peak (VmRSS, VmHWM) in KiB, from /proc/<pid>/status."""
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB$", status, flags=re.M))
    if "VmRSS" not in found or "VmHWM" not in found:
        raise ParseError("/proc status: no VmRSS or VmHWM line (is the process still running?)")
    return int(found["VmRSS"]), int(found["VmHWM"])


def load1(loadavg: str) -> float:
    """The one-minute load average, from /proc/loadavg."""
    try:
        return float(loadavg.split()[0])
    except (IndexError, ValueError):
        raise ParseError(f"/proc/loadavg: unexpected {loadavg[:40]!r}") from None


@dataclass(frozen=True)
class BenchstatRow:
    package: str
    benchmark: str
    unit: str
    value: str
    spread: str


def parse_benchstat(text: str) -> list[BenchstatRow]:
    """benchstat's single-file tables: each benchmark's value and ± spread, per package and unit."""
    rows: list[BenchstatRow] = []
    package, unit = "", ""
    for line in text.splitlines():
        if line.startswith("pkg: "):
            package = line.removeprefix("pkg: ").strip()
            continue
        header = re.match(r"^\s+│\s+(\S+)\s+│$", line)
        if header and not header[1].endswith(".txt"):
            unit = header[1]
            continue
        row = re.match(r"^(\S+)\s+(\S+)\s+±\s+(\S+)", line)
        if row and package and unit and row[1] != "geomean":
            rows.append(BenchstatRow(package, row[1], unit, row[2], row[3]))
    return rows


def benchmark_names(go_bench: str) -> set[str]:
    """Benchmarks in `go test -bench` output, without the -GOMAXPROCS suffix benchstat keeps."""
    return {line.split()[0] for line in go_bench.splitlines() if line.startswith("Benchmark")}


def created_resources(preview_out: str) -> int:
    """Resources a preview of a fresh stack plans: its `+ N to create` summary line."""
    found = re.search(r"^\s*\+\s+(\d+) to create", preview_out, flags=re.M)
    if not found:
        raise ParseError("preview: no '+ N to create' summary line")
    return int(found[1])
