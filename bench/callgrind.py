"""CPU instructions per request of an HTTP server, counted by valgrind's callgrind: a figure that holds still.

Wall-clock requests per second on a shared machine swing between rounds of the same binary; the number of
instructions the server executes for one request does not. This module starts a server under
`valgrind --tool=callgrind` on a free loopback port, sends it a fixed number of requests on ONE keep-alive
connection from a client outside valgrind (this Python process), and has callgrind write its counters at chosen
request counts while the server keeps running. The figure is the difference of the counts at two such points
divided by the requests between them, so whatever happens once (process start-up, the readiness probe, accepting
the connection, the first requests' lazy set-up) cancels out:

    (instructions after N2 requests - instructions after N1 requests) / (N2 - N1)

Callgrind counts the instructions executed in user space by every thread of the process (its "Ir" event): the
program, Go's runtime (scheduler, garbage collector, netpoller), all of it; not the kernel's work in system calls.

No signal reaches the server. Callgrind 3.19 aborts ("Assertion 'sigNum == vgCallgrind_current_state.sig'
failed" in vgCallgrind_post_signal) when a Go program's signal handler runs: seen here with goapp, killed by the
first SIGURG that Go's runtime sends itself to preempt a goroutine. So:

- GODEBUG=asyncpreemptoff=1 is always set. It stops that SIGURG (asynchronous preemption); goroutines are then
  preempted only at function entries. Natively a /hello request is far too short for a goroutine to run the
  10 ms after which Go preempts it, so this changes nothing that is measured; under valgrind, where everything
  runs some 50 times slower, preemption would fire often and only there. GOMAXPROCS=1 alone does not help (seen:
  the same abort at start-up); it is the caller's choice (the wrk runs use GOMAXPROCS=1, and so should this).
- The counters are written with `vgdb dump` (what `callgrind_control --dump` sends): a monitor command through
  valgrind's embedded gdbserver, over FIFOs, answered after the dump file is complete. When every thread of the
  server is blocked in a system call, as it is between requests, vgdb wakes valgrind's scheduler with ptrace
  (PTRACE_ATTACH, which stops the threads; vgdb consumes the stop, so no handler runs, then it detaches). Seen
  with --trace-signals=yes: no signal is delivered to the program.
- A dump also zeroes callgrind's counters, so each dump file ("part") holds the instructions since the previous
  one; the counts at each point are their running sum.
- The server is ended with `vgdb v.kill` (valgrind exits from within; nothing more is counted or written), or
  SIGKILL if that fails; the dumps are complete by then. A SIGTERM would run Go's handler, hence the abort.

vgdb finds a server's FIFOs by names made from the environment (LOGNAME or USER, HOST or HOSTNAME) and the
--vgdb-prefix; goapp reads HOST as its listen address, so vgdb runs with exactly the server's environment and a
prefix in this run's own temporary directory.

    python bench/callgrind.py [--requests 1000,21000] [--path /hello] [--ready-path /readyz] [--env NAME=VALUE]...
                              [--header 'Name: value']... [--cpu 1] [--repeat 2] [--keep DIR] -- COMMAND [ARG...]

`{port}` in COMMAND's arguments and in --env values is replaced by the port chosen; one JSON object per run is
printed on stdout.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

INSTRUCTIONS = "Ir"
# Go's asynchronous preemption off: see the module's docstring.
GODEBUG_SETTING = "asyncpreemptoff=1"
DUMP_HINT = re.compile(r"^dump after-(\d+)-requests$")
# Dumps after 1,000 and 21,000 requests. Go collects garbage every ~1,600 /hello requests on these servers (seen
# with gctrace; one collection is ~3 million instructions), so 20,000 requests span a dozen collections and the
# figure includes their share; they take 20 to 40 s under callgrind here.
DEFAULT_REQUESTS = (1000, 21000)
# Where a client waits for one answer; valgrind slows a server down some 50 times, never this much.
REQUEST_TIMEOUT_S = 60.0


class MeasurementError(RuntimeError):
    """The measurement could not be taken; the message says which step failed and what was seen."""


@dataclass(frozen=True)
class Dump:
    """One callgrind output file: which dump it was, what triggered it, and the instructions it counted."""

    part: int
    trigger: str
    instructions: int


@dataclass(frozen=True)
class Measurement:
    """Instructions executed by the whole server process from its start until it had answered each count of
    requests, and the per-request figure from the first and last of them."""

    requests: tuple[int, ...]
    instructions: tuple[int, ...]
    per_request: float


# --- parsing (pure) ------------------------------------------------------------------------------------------


def parse_dump(text: str, source: str = "callgrind output") -> Dump:
    """The part number, trigger and instruction count of one callgrind output file.

    The count is the "Ir" column of the `totals:` line (or of `summary:`, which callgrind writes in the header;
    when both are present they must agree), the column being found from the `events:` line.
    """
    header: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):  # a comment, in callgrind's format
            continue
        key, sep, value = line.partition(":")
        if sep and key in ("events", "summary", "totals", "part") and key not in header:
            header[key] = value.strip()
        elif sep and key == "desc" and value.strip().startswith("Trigger:"):
            header["trigger"] = value.strip().removeprefix("Trigger:").strip()
    if "events" not in header:
        raise MeasurementError(f"{source}: no 'events:' line; not a callgrind output file")
    events = header["events"].split()
    if INSTRUCTIONS not in events:
        raise MeasurementError(f"{source}: events are {events}, want one named {INSTRUCTIONS}")
    column = events.index(INSTRUCTIONS)
    counts = {key: _column(header[key], column, source, key) for key in ("summary", "totals") if key in header}
    if not counts:
        raise MeasurementError(f"{source}: neither a 'summary:' nor a 'totals:' line")
    if len(set(counts.values())) > 1:
        raise MeasurementError(f"{source}: summary {counts['summary']} and totals {counts['totals']} disagree")
    part = header.get("part", "1")
    if not part.isdigit():
        raise MeasurementError(f"{source}: 'part: {part}' is not a number")
    return Dump(part=int(part), trigger=header.get("trigger", ""), instructions=next(iter(counts.values())))


def _column(values: str, column: int, source: str, key: str) -> int:
    fields = values.split()
    if len(fields) <= column or not fields[column].isdigit():
        raise MeasurementError(f"{source}: '{key}: {values}' has no count for event {column + 1} ({INSTRUCTIONS})")
    return int(fields[column])


def read_dumps(paths: Iterable[Path]) -> list[Dump]:
    """The dumps in these files, in the order callgrind wrote them (empty files, which callgrind creates at start
    for an end-of-program dump that never came, are skipped)."""
    dumps = [parse_dump(path.read_text(), str(path)) for path in paths if path.stat().st_size > 0]
    parts = [d.part for d in dumps]
    if len(set(parts)) != len(parts):
        raise MeasurementError(f"dump parts {sorted(parts)} repeat: files of more than one process?")
    return sorted(dumps, key=lambda d: d.part)


def dump_hint(requests: int) -> str:
    """What a dump after this many requests is called (callgrind records it as the trigger 'dump <hint>')."""
    return f"after-{requests}-requests"


def instructions_at(dumps: Sequence[Dump]) -> dict[int, int]:
    """Instructions since the process started until each request count that has a dump: each dump holds only
    what was counted since the one before, so the count at a point is the sum of every part up to it."""
    total = 0
    at: dict[int, int] = {}
    for dump in dumps:
        total += dump.instructions
        found = DUMP_HINT.match(dump.trigger)
        if found:
            at[int(found[1])] = total
    return at


def per_request(at: Mapping[int, int], first: int, last: int) -> float:
    """Instructions per request between two request counts: start-up and the first requests cancel out."""
    if not 0 <= first < last:
        raise MeasurementError(f"request counts {first} and {last}: want 0 <= first < last")
    missing = [n for n in (first, last) if n not in at]
    if missing:
        raise MeasurementError(f"no dump after {missing} requests; dumps exist after {sorted(at)}")
    spent = at[last] - at[first]
    if spent <= 0:
        raise MeasurementError(f"instructions did not grow from {first} to {last} requests ({at[first]} -> {at[last]})")
    return spent / (last - first)


def measurement(dumps: Sequence[Dump], requests: Sequence[int]) -> Measurement:
    at = instructions_at(dumps)
    value = per_request(at, requests[0], requests[-1])
    return Measurement(tuple(requests), tuple(at[n] for n in requests), value)


def parse_requests(text: str) -> tuple[int, ...]:
    """'500,5500' -> (500, 5500): increasing counts of requests, at least two, the first at least 1."""
    try:
        counts = tuple(int(word) for word in text.split(","))
    except ValueError:
        raise MeasurementError(f"--requests {text!r}: want increasing request counts such as 500,5500") from None
    if len(counts) < 2 or counts[0] < 1 or any(b <= a for a, b in itertools.pairwise(counts)):
        raise MeasurementError(f"--requests {text!r}: want at least two increasing counts, the first at least 1")
    return counts


def with_godebug(env: Mapping[str, str]) -> dict[str, str]:
    """env with Go's asynchronous preemption off, keeping any other GODEBUG setting."""
    settings = [s for s in env.get("GODEBUG", "").split(",") if s]
    if any(s.startswith("asyncpreemptoff=") and s != GODEBUG_SETTING for s in settings):
        raise MeasurementError(
            f"GODEBUG={env['GODEBUG']}: callgrind needs {GODEBUG_SETTING} (its signal aborts callgrind)"
        )
    if GODEBUG_SETTING not in settings:
        settings.append(GODEBUG_SETTING)
    return dict(env) | {"GODEBUG": ",".join(settings)}


def with_port(words: Iterable[str], port: int) -> list[str]:
    return [word.replace("{port}", str(port)) for word in words]


def parse_assignments(items: Iterable[str], what: str, separator: str) -> dict[str, str]:
    """NAME=VALUE (or 'Name: value') items as a mapping; an item without the separator is an error naming it."""
    parsed: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(separator)
        if not sep or not name.strip():
            raise MeasurementError(f"{what} {item!r}: want NAME{separator}VALUE")
        parsed[name.strip()] = value.strip() if separator == ":" else value
    return parsed


# --- running (valgrind, the server, the client) --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Client:
    """One keep-alive HTTP/1.1 connection sending the request wrk sends (request line and Host, plus any
    headers given), checking that every answer is a 2xx and that the connection stays open."""

    def __init__(self, port: int, path: str, headers: Mapping[str, str]) -> None:
        self.path = path
        self.headers = dict(headers)
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        self.sent = 0

    def send(self, count: int) -> None:
        for _ in range(count):
            self.connection.putrequest("GET", self.path, skip_accept_encoding=True)
            for name, value in self.headers.items():
                self.connection.putheader(name, value)
            self.connection.endheaders()
            response = self.connection.getresponse()
            response.read()
            self.sent += 1
            if not 200 <= response.status < 300:
                raise MeasurementError(f"GET {self.path} answered {response.status} at request {self.sent}")
            if response.will_close:
                raise MeasurementError(f"GET {self.path}: the server closed the connection after request {self.sent}")

    def close(self) -> None:
        self.connection.close()


def get_status(port: int, path: str, headers: Mapping[str, str]) -> int | None:
    """The status of one GET on a fresh connection, None when nothing answers yet."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=dict(headers))
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


@dataclass(frozen=True)
class Run:
    """One server under callgrind and where its files are."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    work: Path
    port: int

    @property
    def vgdb_prefix(self) -> Path:
        return self.work / "vgdb"

    def log_tail(self) -> str:
        lines: list[str] = []
        for name in ("server.stderr", "valgrind.log"):
            path = self.work / name
            if path.exists():
                lines += [f"{name}: {line}" for line in path.read_text(errors="replace").splitlines()[-8:]]
        return "\n".join(lines)

    def vgdb(self, command: str) -> None:
        """A monitor command to the server's valgrind; returns once it is done (a dump file is then complete)."""
        done = subprocess.run(
            ["vgdb", f"--vgdb-prefix={self.vgdb_prefix}", f"--pid={self.process.pid}", "--cmd-time-out=120", command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0 and command != "v.kill":
            raise MeasurementError(f"vgdb {command} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def valgrind_version() -> str:
    """valgrind's version ("3.19.0"), for the report; an error naming the missing tool when valgrind or its
    vgdb is not installed."""
    for tool in ("valgrind", "vgdb"):
        if shutil.which(tool) is None:
            raise MeasurementError(f"{tool} is not installed (Debian's valgrind package has both)")
    done = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("valgrind-")


def start(argv: Sequence[str], env: Mapping[str, str], work: Path, port: int, cpu: int | None) -> Run:
    valgrind = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={work / 'callgrind.out'}",
        "--vgdb=yes",
        f"--vgdb-prefix={work / 'vgdb'}",
        f"--log-file={work / 'valgrind.log'}",
    ]
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    full_env = with_godebug(os.environ | dict(env))
    # The server's stdout (goapp's and Gin's access lines) goes to /dev/null, as in the wrk runs; stderr is kept
    # for the error message. Callgrind counts no kernel work, so the sink itself costs nothing that is counted.
    with (work / "server.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [*pin, *valgrind, *argv], env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
    return Run(process, full_env, work, port)


def wait_ready(run: Run, path: str, headers: Mapping[str, str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            raise MeasurementError(f"the server exited ({run.process.returncode}) at start:\n{run.log_tail()}")
        status = get_status(run.port, path, headers)
        if status is not None and 200 <= status < 300:
            return
        time.sleep(0.2)
    raise MeasurementError(f"GET {path} on 127.0.0.1:{run.port} did not answer 2xx within {timeout_s:.0f} s")


def stop(run: Run) -> None:
    if run.process.poll() is None:
        run.vgdb("v.kill")
    try:
        run.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        run.process.kill()
        run.process.wait(timeout=30)


def measure(
    argv: Sequence[str],
    *,
    requests: Sequence[int] = DEFAULT_REQUESTS,
    path: str = "/hello",
    ready_path: str | None = None,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    cpu: int | None = None,
    start_timeout_s: float = 120.0,
    keep: Path | None = None,
) -> Measurement:
    """Instructions per GET `path` request of the server `argv` starts (`{port}` in argv and env values is the
    port it must listen on, on 127.0.0.1), from dumps after each count in `requests` (increasing; the figure
    uses the first and the last). `ready_path` (default `path`) must answer 2xx before counting starts; `cpu`
    pins valgrind with taskset; `keep` receives the callgrind output files."""
    counts = tuple(requests)
    parse_requests(",".join(map(str, counts)))  # the same checks as the command line's
    valgrind_version()
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="goapp-callgrind."))
    try:
        run = start(
            with_port(argv, port), {k: with_port([v], port)[0] for k, v in (env or {}).items()}, work, port, cpu
        )
        try:
            wait_ready(run, ready_path or path, headers or {}, start_timeout_s)
            client = Client(port, path, headers or {})
            try:
                for count in counts:
                    client.send(count - client.sent)
                    run.vgdb(f"dump {dump_hint(count)}")
            except (OSError, http.client.HTTPException) as error:
                # The server went away: valgrind's log says why (callgrind's assertion, for one).
                raise MeasurementError(
                    f"GET {path} failed after {client.sent} requests: {error!r}\n{run.log_tail()}"
                ) from error
            finally:
                client.close()
        finally:
            stop(run)
        files = sorted(work.glob("callgrind.out*"))
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for file in [*files, work / "valgrind.log"]:
                shutil.copy2(file, keep / file.name)
        return measurement(read_dumps(files), counts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- command line --------------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/callgrind.py",
        description="CPU instructions per request of an HTTP server under callgrind (see the module's docstring).",
    )
    default = ",".join(map(str, DEFAULT_REQUESTS))
    parser.add_argument("--requests", default=default, help=f"dump after these request counts (default {default})")
    parser.add_argument("--path", default="/hello", help="path every request GETs (default /hello)")
    parser.add_argument("--ready-path", help="path that answers 2xx once the server is ready (default --path)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="server environment")
    parser.add_argument("--header", action="append", default=[], metavar="'Name: value'", help="request header")
    parser.add_argument("--cpu", type=int, help="pin valgrind to this CPU (taskset -c)")
    parser.add_argument("--repeat", type=int, default=1, help="measure this many times, one JSON line each")
    parser.add_argument("--keep", type=Path, help="copy the callgrind output files here (run-<n>/ each)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the server's command; {port} is its port")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        if not command:
            raise MeasurementError("no server command: give it after --, with {port} where its port goes")
        if args.repeat < 1:
            raise MeasurementError(f"--repeat {args.repeat}: want at least 1")
        requests = parse_requests(args.requests)
        env = parse_assignments(args.env, "--env", "=")
        headers = parse_assignments(args.header, "--header", ":")
        for run in range(1, args.repeat + 1):
            result = measure(
                command,
                requests=requests,
                path=args.path,
                ready_path=args.ready_path,
                env=env,
                headers=headers,
                cpu=args.cpu,
                keep=args.keep / f"run-{run}" if args.keep else None,
            )
            if not math.isfinite(result.per_request):
                raise MeasurementError(f"instructions per request is {result.per_request}")
            line = {
                "command": command,
                "run": run,
                "requests": list(result.requests),
                "instructions": list(result.instructions),
                "instructions_per_request": round(result.per_request, 1),
            }
            print(json.dumps(line), flush=True)
    except MeasurementError as error:
        print(f"callgrind: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
