"""bench/callgrind.py: instructions per request from callgrind's dumps, and the measurement itself.

The parser is checked on real callgrind output files (bench/data/callgrind/, see its README); the client on a real
loopback HTTP server; the whole measurement (valgrind, vgdb, a Go server built as the benchmark builds it) in the
tests marked `bench`.
"""

from __future__ import annotations

import http.server
import math
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench import callgrind

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "bench" / "data" / "callgrind"
NETHTTP = FIXTURES / "nethttp-100-600"


# --- parsing real dumps ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (NETHTTP / "callgrind.out.1", callgrind.Dump(1, "dump after-100-requests", 7_175_481)),
        (NETHTTP / "callgrind.out.2", callgrind.Dump(2, "dump after-600-requests", 18_634_696)),
        # Nine events with the cache simulation on: the count is the Ir column, not the sum of the line.
        (FIXTURES / "cache-sim" / "callgrind.out.1", callgrind.Dump(1, "dump after-5-requests", 3_735_880)),
        (FIXTURES / "termination" / "callgrind.out", callgrind.Dump(1, "Program termination", 3_260_834)),
    ],
)
def test_a_dump_gives_its_part_trigger_and_instruction_count(path: Path, expected: callgrind.Dump) -> None:
    assert callgrind.parse_dump(path.read_text(), str(path)) == expected


def test_counts_at_each_request_count_are_the_running_sum_of_parts() -> None:
    # callgrind zeroes its counters at each dump, so part 2 holds only what came after part 1.
    dumps = callgrind.read_dumps(sorted(NETHTTP.iterdir()))
    assert [d.part for d in dumps] == [1, 2], "the empty start-up file is not a dump"
    assert callgrind.instructions_at(dumps) == {100: 7_175_481, 600: 7_175_481 + 18_634_696}


def test_instructions_per_request_is_the_difference_over_the_requests_between() -> None:
    result = callgrind.measurement(callgrind.read_dumps(sorted(NETHTTP.iterdir())), (100, 600))
    assert result.requests == (100, 600)
    assert result.instructions == (7_175_481, 25_810_177)
    # 18,634,696 instructions for the 500 requests between the dumps; the run that wrote them printed 37269.4.
    assert result.per_request == pytest.approx(37_269.392)


def test_a_dump_at_program_end_is_not_taken_for_a_request_count() -> None:
    ended = callgrind.parse_dump((FIXTURES / "termination" / "callgrind.out").read_text())
    assert callgrind.instructions_at([ended]) == {}
    with pytest.raises(
        callgrind.MeasurementError, match=r"no dump after \[100, 600\] requests; dumps exist after \[\]"
    ):
        callgrind.per_request(callgrind.instructions_at([ended]), 100, 600)


def test_the_same_part_twice_means_files_of_two_processes() -> None:
    part = NETHTTP / "callgrind.out.1"
    with pytest.raises(callgrind.MeasurementError, match=r"dump parts \[1, 1\] repeat"):
        callgrind.read_dumps([part, part])


HEADER = "version: 1\ncreator: callgrind-3.19.0\npart: 3\ndesc: Trigger: dump after-7-requests\n"


def test_the_ir_column_is_found_by_name() -> None:
    text = HEADER + "events: Dr Ir\nsummary: 5 70\nfn=(1) main\n0 1 2\ntotals: 5 70\n"
    assert callgrind.parse_dump(text) == callgrind.Dump(3, "dump after-7-requests", 70)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("part: 1\nsummary: 10\n", r"x: no 'events:' line; not a callgrind output file"),
        (HEADER + "events: Dr Dw\nsummary: 1 2\n", r"x: events are \['Dr', 'Dw'\], want one named Ir"),
        (HEADER + "events: Ir\nfn=(1) main\n0 5\n", r"x: neither a 'summary:' nor a 'totals:' line"),
        (HEADER + "events: Ir\nsummary: 10\ntotals: 11\n", r"x: summary 10 and totals 11 disagree"),
        (HEADER + "events: Dr Ir\ntotals: 4\n", r"x: 'totals: 4' has no count for event 2 \(Ir\)"),
        ("part: two\nevents: Ir\ntotals: 4\n", r"x: 'part: two' is not a number"),
    ],
)
def test_what_is_not_a_usable_dump_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(callgrind.MeasurementError, match=message):
        callgrind.parse_dump(text, "x")


@pytest.mark.parametrize(
    ("at", "first", "last", "message"),
    [
        ({1: 10, 2: 20}, 2, 2, r"request counts 2 and 2: want 0 <= first < last"),
        ({1: 10, 2: 10}, 1, 2, r"instructions did not grow from 1 to 2 requests \(10 -> 10\)"),
    ],
)
def test_per_request_refuses_what_cannot_be_a_figure(at: dict[int, int], first: int, last: int, message: str) -> None:
    with pytest.raises(callgrind.MeasurementError, match=message):
        callgrind.per_request(at, first, last)


# --- settings ----------------------------------------------------------------------------------------------------


def test_request_counts_come_from_the_command_line() -> None:
    assert callgrind.parse_requests("1000,21000") == (1000, 21000)
    assert callgrind.parse_requests("1,2,3") == (1, 2, 3)


@pytest.mark.parametrize("text", ["", "500", "0,10", "10,10", "20,10", "a,b", "5,,6"])
def test_request_counts_must_increase_from_one(text: str) -> None:
    with pytest.raises(callgrind.MeasurementError, match=r"--requests '.*': want"):
        callgrind.parse_requests(text)


def test_go_asynchronous_preemption_is_off_and_other_godebug_settings_stay() -> None:
    assert callgrind.with_godebug({})["GODEBUG"] == "asyncpreemptoff=1"
    assert callgrind.with_godebug({"GODEBUG": "gctrace=1", "X": "y"}) == {
        "GODEBUG": "gctrace=1,asyncpreemptoff=1",
        "X": "y",
    }
    assert callgrind.with_godebug({"GODEBUG": "asyncpreemptoff=1"})["GODEBUG"] == "asyncpreemptoff=1"
    with pytest.raises(callgrind.MeasurementError, match=r"GODEBUG=asyncpreemptoff=0: callgrind needs"):
        callgrind.with_godebug({"GODEBUG": "asyncpreemptoff=0"})


def test_the_port_goes_where_the_command_says() -> None:
    assert callgrind.with_port(["srv", "-addr", "127.0.0.1:{port}"], 8123) == ["srv", "-addr", "127.0.0.1:8123"]


def test_environment_and_headers_from_the_command_line() -> None:
    assert callgrind.parse_assignments(["A=1", "B=x=y", "C="], "--env", "=") == {"A": "1", "B": "x=y", "C": ""}
    assert callgrind.parse_assignments(["Authorization: Bearer t"], "--header", ":") == {"Authorization": "Bearer t"}
    with pytest.raises(callgrind.MeasurementError, match=r"--env 'A': want NAME=VALUE"):
        callgrind.parse_assignments(["A"], "--env", "=")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--requests", "5"], "callgrind: no server command: give it after --"),
        (["--requests", "9,3", "--", "srv"], "callgrind: --requests '9,3': want"),
        (["--repeat", "0", "--", "srv"], "callgrind: --repeat 0: want at least 1"),
    ],
)
def test_the_command_line_names_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callgrind.main(argv) == 1
    assert capsys.readouterr().err.startswith(message)


# --- the client, on a real loopback server -----------------------------------------------------------------------


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set[int] = set()  # noqa: RUF012 (one server per test, see serve())

    def do_GET(self) -> None:
        Hello.connections.add(id(self.connection))
        body = b'{"message":"Hello from Gin!"}'
        self.send_response(200 if self.path == "/hello" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Closing(Hello):
    protocol_version = "HTTP/1.0"


@pytest.fixture
def serve() -> Iterator[Callable[[type[Hello]], int]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(handler: type[Hello]) -> int:
        Hello.connections = set()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_client_sends_every_request_on_one_kept_alive_connection(serve: Callable[[type[Hello]], int]) -> None:
    client = callgrind.Client(serve(Hello), "/hello", {})
    client.send(3)
    client.send(4)
    client.close()
    assert client.sent == 7
    assert len(Hello.connections) == 1


def test_a_server_that_closes_the_connection_is_not_measured(serve: Callable[[type[Hello]], int]) -> None:
    client = callgrind.Client(serve(Closing), "/hello", {})
    with pytest.raises(
        callgrind.MeasurementError, match=r"GET /hello: the server closed the connection after request 1"
    ):
        client.send(2)
    client.close()


def test_an_answer_other_than_2xx_is_not_measured(serve: Callable[[type[Hello]], int]) -> None:
    client = callgrind.Client(serve(Hello), "/nothing", {})
    with pytest.raises(callgrind.MeasurementError, match=r"GET /nothing answered 404 at request 1"):
        client.send(1)
    client.close()


# --- the whole measurement: valgrind, vgdb and the benchmark's servers ------------------------------------------

# The measurement below (bare net/http, dumps after 100 and 600 requests) ran 37 times in four batches on this
# shared 2-core machine (load average 1.2 to 4.2): 35,800 to 38,218 instructions per request, and no two runs of
# one batch more than 5.5 % apart (the quietest batch: 1.2 %). What moves is the Go runtime's time-driven work
# (sysmon, the scheduler's idle loop, the scavenger), which counts for more per request when valgrind's server or
# the client waits for a CPU; over 500 requests a few hundred thousand instructions of it are 1-5 %. The
# published figure uses 20,000 requests, where it is a fraction of that. The tolerance is 1.5 times the worst
# seen; a run whose window caught a garbage collection the other's did not would be ~17 % off.
SAME_BINARY_TOLERANCE = 0.08
SMALL = (100, 600)
# goapp's default server deadlines, as the benchmark gives them to the deadline floor.
GOAPP_TIMEOUT_FLAGS = [
    "-read-header-timeout",
    "5s",
    "-read-timeout",
    "10s",
    "-write-timeout",
    "10s",
    "-idle-timeout",
    "120s",
]


def build(tmp_path_factory: pytest.TempPathFactory, module: str, name: str) -> Path:
    """A server binary built as the benchmark builds it (static, stripped, trimpath)."""
    out = tmp_path_factory.mktemp(name) / name
    done = subprocess.run(
        ["nice", "-n", "10", "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."],
        cwd=REPO_ROOT / module,
        env=os.environ | {"CGO_ENABLED": "0"},
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"go build in {module} failed:\n{done.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory, "bench/baseline", "baseline")


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory, "bench/tutorial", "tutorial")


@pytest.fixture(scope="module")
def goapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory, "goapp", "goapp")


@pytest.mark.bench
def test_the_same_binary_counts_the_same_instructions_per_request(baseline: Path) -> None:
    command = [str(baseline), "-addr", "127.0.0.1:{port}"]
    first, second = (callgrind.measure(command, requests=SMALL, env={"GOMAXPROCS": "1"}) for _ in range(2))
    for result in (first, second):
        assert result.requests == SMALL
        assert math.isfinite(result.per_request)
        assert result.per_request > 0
        # Start-up is counted before the first dump and cancels out of the difference.
        assert result.instructions[0] > 0
    assert abs(first.per_request / second.per_request - 1) <= SAME_BINARY_TOLERANCE, (first, second)


@pytest.mark.bench
@pytest.mark.parametrize("subject", ["gin", "timeouts", "tutorial", "goapp"])
def test_every_service_subject_is_measured_the_same_way(
    subject: str, baseline: Path, tutorial: Path, goapp: Path, tmp_path: Path
) -> None:
    """No signal reaches a server under callgrind (it would abort), whatever the Go program does."""
    commands = {
        "gin": ([str(baseline), "-addr", "127.0.0.1:{port}", "-router", "gin"], {}),
        "timeouts": ([str(baseline), "-addr", "127.0.0.1:{port}", *GOAPP_TIMEOUT_FLAGS], {}),
        "tutorial": ([str(tutorial), "-addr", "127.0.0.1:{port}"], {}),
        "goapp": (
            [str(goapp)],
            {"HOST": "127.0.0.1", "PORT": "{port}", "DATA_DIR": str(tmp_path), "LOG_LEVEL": "info"},
        ),
    }
    command, env = commands[subject]
    ready = "/readyz" if subject == "goapp" else None
    result = callgrind.measure(command, requests=(50, 250), env={"GOMAXPROCS": "1", **env}, ready_path=ready)
    assert math.isfinite(result.per_request)
    assert result.per_request > 0


@pytest.mark.bench
def test_the_tutorial_peer_answers_what_goapp_answers(tutorial: Path, tmp_path: Path) -> None:
    """The peer is compared with goapp only if it sends the same answer: body and Content-Type."""
    port = callgrind.free_port()
    with (tmp_path / "stdout").open("wb") as stdout:
        server = subprocess.Popen([str(tutorial), "-addr", f"127.0.0.1:{port}"], stdout=stdout, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while callgrind.get_status(port, "/hello", {}) != 200:
            assert server.poll() is None, f"the tutorial exited: {server.communicate()[1].decode()}"
            assert time.monotonic() < deadline, "the tutorial did not answer /hello within 10 s"
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=5) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
            assert answer.read() == b'{"message":"Hello from Gin!"}'
    finally:
        server.kill()
        server.wait(timeout=10)
    # gin.Default()'s access log goes to stdout, the stream where goapp writes its access lines.
    assert '"/hello"' in (tmp_path / "stdout").read_text()


@pytest.mark.bench
def test_a_server_that_does_not_start_is_reported_with_its_exit() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", callgrind.valgrind_version())
    with pytest.raises(callgrind.MeasurementError, match=r"the server exited \(1\) at start"):
        callgrind.measure(["false"], start_timeout_s=60)
