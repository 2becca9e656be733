"""Benchmarks (`make bench`): every figure is a ratio against a baseline measured in the same run, because this
machine is shared and noisy; absolute numbers are recorded but never claimed.

    python -m bench.run [all]      setup, then every part below, then the report
    python -m bench.run setup      install the pinned tools (wrk, benchstat, the chart's venv); idempotent
    python -m bench.run service    wrk: goapp /hello vs the tutorial's server, a bare net/http baseline, bare Gin and
                                   net/http with goapp's server deadlines; notes GET and PUT; instructions per
                                   request of each under callgrind
    python -m bench.run image      image size vs stripped binary; warm rebuild vs cold build
    python -m bench.run engine     render-mode preview of prod vs a one-resource floor; 1, 5, 20 services; unit suite
    python -m bench.run cluster    on the local cluster (started if stopped): warm `make up`; a config change until
                                   the last old pod is gone; the HPA's first added pod under load; pulumi up vs
                                   kubectl apply --server-side, with no change and with an env change
    python -m bench.run go         goapp's Go benchmarks into bench/go-bench.txt (benchstat format)
    python -m bench.run report     bench/results.md and bench/latency.png from bench/data/

Each part rewrites only its own bench/data/<part>.tsv (one line per measurement: metric, subject, run, value,
unit) and bench/data/<part>.status ("measured" or "not measured: <reason>"), so one part can be re-run alone and
the report still shows the others. A part whose dependency is missing records why and the run goes on.

Knobs (environment): BENCH_RUNS (default 5, at least 5 for published figures), BENCH_SERVICE_RUNS (the service's
wrk rounds, default 7), BENCH_CALLGRIND_ROUNDS (default 3) and BENCH_CALLGRIND_REQUESTS (the two request counts
whose instruction difference is measured, default 1000,21000), BENCH_DURATION (wrk run, default 10s),
BENCH_WARMUP (default 2s), BENCH_CONNECTIONS (default 64), BENCH_IMAGE_RUNS (default BENCH_RUNS),
BENCH_CLIENT_CPU / BENCH_SERVER_CPU (default 0 / 1), BENCH_GO_COUNT (default 6) and BENCH_GO_BENCHTIME (default
1s) for the Go benchmarks, BENCH_OUT (default bench/: where data/, results.md, latency.png and go-bench.txt are
written; tests/test_bench.py points it at a temporary directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bench import callgrind, parsers
from bench.report import PREVIEWED_STACK
from ops import project
from ops.engine import Engine, EngineError
from ops.toolchain import Toolchain, ToolchainError, bootstrap

REPO = project.REPO_ROOT
PARTS = ("service", "image", "engine", "cluster", "go")
SERVICE_ORDER = (
    "tutorial-hello",
    "baseline-hello",
    "timeouts-hello",
    "gin-hello",
    "goapp-hello",
    "goapp-quiet-hello",
    "goapp-notes-get",
    "goapp-notes-put",
)
SERVICE_COUNTS = (1, 5, 20)
# goapp's server deadlines: the defaults in goapp/internal/config, given to goapp and to the deadline floor
# alike (as environment and as flags), so that the two run with the same ones by construction.
SERVER_TIMEOUTS = {"read-header-timeout": "5s", "read-timeout": "10s", "write-timeout": "10s", "idle-timeout": "120s"}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class KnobError(ValueError):
    """A BENCH_* variable with a value the benchmark cannot use; the message names it and what is allowed."""


class PartFailed(RuntimeError):
    """A part that cannot finish; its reason becomes the part's status in the report."""


class NotMeasured(RuntimeError):
    """A part whose dependency is missing: not a failure of the run, a reason in the report."""


@dataclass(frozen=True)
class Knobs:
    runs: int = 5
    service_runs: int = 7
    callgrind_rounds: int = 3
    callgrind_requests: tuple[int, ...] = (1000, 21000)
    image_runs: int = 5
    duration: str = "10s"
    warmup: str = "2s"
    connections: int = 64
    go_count: int = 6
    go_benchtime: str = "1s"
    client_cpu: int = 0
    server_cpu: int = 1
    out_dir: Path = REPO / "bench"

    @property
    def data(self) -> Path:
        return self.out_dir / "data"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Knobs:
        def integer(name: str, default: int, least: int) -> int:
            text = environ.get(name, str(default))
            if not re.fullmatch(r"\d+", text) or int(text) < least:
                raise KnobError(f"{name}={text}: want an integer of at least {least}")
            return int(text)

        def matching(name: str, default: str, pattern: str, what: str) -> str:
            text = environ.get(name, default)
            if not re.fullmatch(pattern, text):
                raise KnobError(f"{name}={text}: want {what}")
            return text

        runs = integer("BENCH_RUNS", 5, 1)
        try:
            requests = callgrind.parse_requests(environ.get("BENCH_CALLGRIND_REQUESTS", "1000,21000"))
        except callgrind.MeasurementError as error:
            raise KnobError(f"BENCH_CALLGRIND_REQUESTS: {error}") from None
        return cls(
            runs=runs,
            service_runs=integer("BENCH_SERVICE_RUNS", 7, 1),
            callgrind_rounds=integer("BENCH_CALLGRIND_ROUNDS", 3, 1),
            callgrind_requests=requests,
            image_runs=integer("BENCH_IMAGE_RUNS", runs, 1),
            duration=matching("BENCH_DURATION", "10s", r"\d+[smh]", "a wrk duration such as 10s"),
            warmup=matching("BENCH_WARMUP", "2s", r"\d+[smh]", "a wrk duration such as 2s"),
            connections=integer("BENCH_CONNECTIONS", 64, 1),
            go_count=integer("BENCH_GO_COUNT", 6, 1),
            go_benchtime=matching(
                "BENCH_GO_BENCHTIME", "1s", r"\d+(ms|s|x)", "a go test -benchtime such as 1s, 200ms or 100x"
            ),
            client_cpu=integer("BENCH_CLIENT_CPU", 0, 0),
            server_cpu=integer("BENCH_SERVER_CPU", 1, 0),
            out_dir=Path(environ.get("BENCH_OUT") or REPO / "bench"),
        )


class Records:
    """One part's bench/data/<part>.tsv and .status."""

    def __init__(self, data: Path, part: str) -> None:
        self.data, self.part = data, part
        self.tsv, self.status = data / f"{part}.tsv", data / f"{part}.status"

    def begin(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.tsv.write_text("metric\tsubject\trun\tvalue\tunit\n")
        self.status.write_text("running\n")
        self.record("load1_start", "machine", 0, parsers.load1(Path("/proc/loadavg").read_text()), "load")

    def record(self, metric: str, subject: str, run: int, value: float | int | str, unit: str) -> None:
        with self.tsv.open("a") as handle:
            handle.write(f"{metric}\t{subject}\t{run}\t{value}\t{unit}\n")

    def measured(self) -> None:
        self.record("load1_end", "machine", 0, parsers.load1(Path("/proc/loadavg").read_text()), "load")
        self.status.write_text(f"measured {datetime.now(UTC).strftime('%Y-%m-%dT%H:%MZ')}\n")
        log(f"{self.part}: done")

    def not_measured(self, reason: str) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.status.write_text(f"not measured: {reason}\n")
        log(f"{self.part}: not measured: {reason}")


def command_line(words: Sequence[str]) -> str:
    """A command as the line a reader would paste into a shell."""
    return shlex.join(words)


@dataclass
class Context:
    knobs: Knobs
    work: Path
    cache: Path = field(default_factory=lambda: project.cache() / "bench")
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def log_file(self, name: str) -> Path:
        return self.work / f"{name}.log"

    def run(self, name: str, command: Sequence[str], **options: object) -> subprocess.CompletedProcess[str]:
        """A command with its output in <work>/<name>.log; a failure stops the part, quoting the log's end."""
        with self.log_file(name).open("w") as handle:
            done: subprocess.CompletedProcess[str] = subprocess.run(
                list(command),
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                **options,  # type: ignore[call-overload]
            )
        if done.returncode != 0:
            raise PartFailed(f"{command_line(command[:3])}… failed: {tail(self.log_file(name))}")
        return done

    def timed(self, name: str, command: Sequence[str], **options: object) -> float:
        start = time.monotonic()
        self.run(name, command, **options)
        return round(time.monotonic() - start, 3)

    def stop_started(self) -> None:
        for process in self.started:
            stop(process)
        self.started.clear()

    def keep_logs(self, part: str) -> None:
        """The part's command logs outlive the temporary directory, for looking into a surprising figure."""
        destination = self.cache / "logs" / part
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir(parents=True)
        for log_file in self.work.glob("*.log"):
            shutil.copy(log_file, destination)


def tail(path: Path, lines: int = 10) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str, token: str | None = None, timeout: float = 2) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status), response.read(), response.headers.get("Content-Type", "")


# --- setup ---------------------------------------------------------------------------------------------------


def setup(ctx: Context) -> None:
    pins = project.pins()
    install_debian("wrk", pins["BENCH_WRK_DEBIAN_VERSION"])
    install_debian("valgrind", pins["BENCH_VALGRIND_DEBIAN_VERSION"])
    install_benchstat(ctx, pins["BENCH_BENCHSTAT_VERSION"])
    install_venv(ctx, pins["BENCH_MATPLOTLIB_VERSION"])


def debian_version(package: str) -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def install_debian(package: str, version: str) -> None:
    if debian_version(package) == version:
        return
    log(f"installing Debian's {package} {version}")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*apt, "install", "-y", "--no-install-recommends", f"{package}={version}"]
    if subprocess.run(install, env=env, stdout=sys.stderr, check=False).returncode != 0:
        subprocess.run([*apt, "update"], env=env, stdout=sys.stderr, check=False)
        if subprocess.run(install, env=env, stdout=sys.stderr, check=False).returncode != 0:
            raise PartFailed(f"cannot install {package}={version} from Debian (see apt-cache policy {package})")


def benchstat_path(ctx: Context) -> Path:
    return ctx.cache / "bin" / f"benchstat-{project.pins()['BENCH_BENCHSTAT_VERSION']}" / "benchstat"


def install_benchstat(ctx: Context, version: str) -> None:
    binary = benchstat_path(ctx)
    if binary.is_file():
        return
    log(f"installing benchstat (golang.org/x/perf {version})")
    binary.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["nice", "-n", "10", "go", "install", f"golang.org/x/perf/cmd/benchstat@{version}"],
        env={**os.environ, "GOBIN": str(binary.parent), "GOFLAGS": "-mod=mod"},
        stdout=sys.stderr,
        check=False,
    )
    if done.returncode != 0:
        raise PartFailed(f"cannot install benchstat golang.org/x/perf@{version}")


def chart_venv(ctx: Context) -> Path:
    return project.cache() / "bench-venv"


def install_venv(ctx: Context, matplotlib: str) -> None:
    """The chart's matplotlib lives in a venv of its own, not the project's."""
    venv, requirements = chart_venv(ctx), REPO / "bench" / "requirements.txt"
    stamp, want = venv / ".requirements.sha256", hashlib.sha256(requirements.read_bytes()).hexdigest()
    if (venv / "bin" / "python").is_file() and stamp.is_file() and stamp.read_text().strip() == want:
        return
    if f"matplotlib=={matplotlib}" not in requirements.read_text().splitlines():
        raise PartFailed(f"bench/requirements.txt must pin matplotlib=={matplotlib} (BENCH_MATPLOTLIB_VERSION)")
    log(f"installing bench/requirements.txt into {venv}")
    if not (venv / "bin" / "python").is_file():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
        stdout=sys.stderr,
        check=True,
    )
    stamp.write_text(want + "\n")


def machine(ctx: Context) -> None:
    pins = project.pins()

    def out(command: Sequence[str], fallback: str) -> str:
        done = subprocess.run(list(command), capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else fallback

    cpu = next(
        (
            line.split(": ", 1)[1]
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    memory_kib = int(re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)[1])  # type: ignore[index]
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.M)
    rows = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": os.uname().release,
        "memory": f"{round(memory_kib / 1048576)} GiB",
        "os": os_name[1] if os_name else "unknown",
        "go": out(["go", "env", "GOVERSION"], "missing"),
        "wrk": debian_version("wrk") or "missing",
        "valgrind": debian_version("valgrind") or "missing",
        "benchstat": f"golang.org/x/perf {pins['BENCH_BENCHSTAT_VERSION']}",
        "matplotlib": pins["BENCH_MATPLOTLIB_VERSION"],
        "docker": out(["docker", "version", "--format", "{{.Server.Version}}"], "not running"),
        "pulumi": f"{pins['PULUMI_VERSION']} (kubernetes provider {pins['PULUMI_KUBERNETES_VERSION']})",
        "python": out(["python3", "-c", "import platform; print(platform.python_version())"], "missing"),
    }
    ctx.knobs.data.mkdir(parents=True, exist_ok=True)
    (ctx.knobs.data / "machine.tsv").write_text("key\tvalue\n" + "".join(f"{k}\t{v}\n" for k, v in rows.items()))


# --- service -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One row of the service benchmark: which server, which request."""

    kind: str
    path: str
    lua: Mapping[str, str]


def subjects(token: str) -> dict[str, Subject]:
    get, put = {"BENCH_METHOD": "GET"}, {"BENCH_METHOD": "PUT", "BENCH_PUT_NAMES": "64", "BENCH_BODY_BYTES": "256"}
    return {
        "goapp-hello": Subject("goapp", "/hello", get),
        "goapp-quiet-hello": Subject("goapp-quiet", "/hello", get),
        "baseline-hello": Subject("baseline", "/hello", get),
        "timeouts-hello": Subject("timeouts", "/hello", get),
        "gin-hello": Subject("gin", "/hello", get),
        "goapp-notes-get": Subject("goapp", "/notes/bench", {**get, "BENCH_TOKEN": token}),
        "goapp-notes-put": Subject("goapp", "/notes/bench-", {**put, "BENCH_TOKEN": token}),
        "tutorial-hello": Subject("tutorial", "/hello", get),
    }


def timeouts_as_env() -> dict[str, str]:
    return {name.upper().replace("-", "_"): value for name, value in SERVER_TIMEOUTS.items()}


def timeouts_as_flags() -> list[str]:
    return [word for name, value in SERVER_TIMEOUTS.items() for word in (f"-{name}", value)]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Service:
    """Servers are built like the image builds goapp (static, stripped, trimpath) and pinned to one core."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.token = f"bench-{secrets.token_hex(16)}"
        self.binaries = {
            "goapp": ctx.work / "goapp",
            "baseline": ctx.work / "baseline",
            "tutorial": ctx.work / "tutorial",
        }

    def build(self) -> None:
        log("building goapp, the baseline and the tutorial's server")
        build = ["nice", "-n", "10", "go", "build", "-trimpath", "-ldflags", "-s -w", "-o"]
        env = {**os.environ, "CGO_ENABLED": "0"}
        sources = {
            "goapp": REPO / "goapp",
            "baseline": REPO / "bench" / "baseline",
            "tutorial": REPO / "bench" / "tutorial",
        }
        for name, source in sources.items():
            self.ctx.run(f"build-{name}", [*build, str(self.binaries[name]), "."], cwd=source, env=env)

    def goapp_env(self, kind: str, data_dir: Path, port: str) -> dict[str, str]:
        """goapp as shipped (info-level JSON access log, here to /dev/null), except no drain on stop; the quiet
        variant only raises LOG_LEVEL to warn, which drops the per-request access log line."""
        return {
            "GOMAXPROCS": "1",
            "HOST": "127.0.0.1",
            "PORT": port,
            "DATA_DIR": str(data_dir),
            "SHUTDOWN_DRAIN": "0s",
            "NOTES_TOKEN": self.token,
            **timeouts_as_env(),
            "LOG_LEVEL": "warn" if kind == "goapp-quiet" else "info",
        }

    def floor_argv(self, kind: str, address: str) -> list[str]:
        """The same binary is every floor: bare net/http (with goapp's server deadlines for the timeouts subject),
        or a bare Gin engine (no middleware); the tutorial's program is its own."""
        if kind == "tutorial":
            return [str(self.binaries["tutorial"]), "-addr", address]
        router = "gin" if kind == "gin" else "nethttp"
        flags = timeouts_as_flags() if kind == "timeouts" else []
        return [str(self.binaries["baseline"]), "-addr", address, "-router", router, *flags]

    def start(self, kind: str, run: int) -> Server:
        port = free_port()
        pin = ["taskset", "-c", str(self.ctx.knobs.server_cpu)]
        if kind in ("goapp", "goapp-quiet"):
            data_dir = self.ctx.work / f"data-{run}"
            data_dir.mkdir(exist_ok=True)
            env = {**os.environ, **self.goapp_env(kind, data_dir, str(port))}
            command, ready = [*pin, str(self.binaries["goapp"])], "/readyz"
        else:
            env = {**os.environ, "GOMAXPROCS": "1"}
            command, ready = [*pin, *self.floor_argv(kind, f"127.0.0.1:{port}")], "/hello"
        # Every server's stdout (goapp's and the tutorial's access lines) goes to the same sink, /dev/null.
        stderr = (self.ctx.work / f"{kind}.stderr").open("ab")
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        self.ctx.started.append(process)
        server = Server(process, port)
        for _ in range(100):
            with contextlib.suppress(OSError):
                if http_get(server.url(ready), timeout=1)[0] == 200:
                    return server
            if process.poll() is not None:
                raise PartFailed(f"{kind} exited at start; stderr: {tail(self.ctx.work / f'{kind}.stderr', 5)}")
            time.sleep(0.1)
        raise PartFailed(f"{kind} did not answer {ready} on 127.0.0.1:{port} within 10s")

    def wrk(self, url: str, length: str, output: Path, lua: Mapping[str, str]) -> None:
        knobs = self.ctx.knobs
        command = [
            "taskset",
            "-c",
            str(knobs.client_cpu),
            "wrk",
            "-t1",
            f"-c{knobs.connections}",
            f"-d{length}",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(REPO / "bench" / "wrk" / "bench.lua"),
            url,
        ]
        with output.open("w") as handle:
            done = subprocess.run(
                command, env={**os.environ, **lua}, stdout=handle, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode != 0:
            raise PartFailed(f"wrk failed on {url}: {tail(output, 5)}")

    def measure(self, records: Records, name: str, subject: Subject, run: int) -> None:
        """A measured run: fresh server, unrecorded warm-up, recorded run, resident memory, stop."""
        server = self.start(subject.kind, run)
        if name == "goapp-notes-get":
            request = urllib.request.Request(server.url("/notes/bench"), data=b"n" * 256, method="PUT")
            request.add_header("Authorization", f"Bearer {self.token}")
            urllib.request.urlopen(request, timeout=5).close()
        log(f"service: {name} run {run}/{self.ctx.knobs.service_runs}")
        output = self.ctx.knobs.data / "wrk" / f"{name}-{run}.txt"
        self.wrk(server.url(subject.path), self.ctx.knobs.warmup, self.ctx.work / "warmup.txt", subject.lua)
        self.wrk(server.url(subject.path), self.ctx.knobs.duration, output, subject.lua)
        result = parsers.parse_wrk(output.read_text())
        # Any failed request makes the run meaningless: a fast error is not a fast answer.
        if result.failed:
            raise PartFailed(f"{name} run {run} had errors ({result.errors}); see {output}")
        records.record("rps", name, run, f"{result.rps:.1f}", "req/s")
        for percentile, micros in result.latency_us.items():
            records.record(f"latency_p{percentile:g}", name, run, micros, "us")
        rss, hwm = parsers.proc_memory(Path(f"/proc/{server.process.pid}/status").read_text())
        records.record("rss_end", name, run, f"{rss / 1024:.1f}", "MiB")
        records.record("rss_peak", name, run, f"{hwm / 1024:.1f}", "MiB")
        stop(server.process)

    def answer(self, kind: str) -> tuple[str, bytes]:
        server = self.start(kind, 0)
        _, body, content_type = http_get(server.url("/hello"))
        stop(server.process)
        return content_type, body


def service(ctx: Context) -> None:
    knobs = ctx.knobs
    for tool in ("wrk", "taskset", "go"):
        if shutil.which(tool) is None:
            raise NotMeasured(f"{tool} is not installed (run python -m bench.run setup)")
    cores = os.cpu_count() or 1
    if knobs.client_cpu >= cores or knobs.server_cpu >= cores or knobs.client_cpu == knobs.server_cpu:
        raise NotMeasured(
            f"needs two distinct cores (BENCH_CLIENT_CPU={knobs.client_cpu}, BENCH_SERVER_CPU={knobs.server_cpu}, "
            f"nproc={cores})"
        )
    records = Records(knobs.data, "service")
    records.begin()
    shutil.rmtree(knobs.data / "wrk", ignore_errors=True)
    (knobs.data / "wrk").mkdir(parents=True)
    bench = Service(ctx)
    bench.build()
    goapp = bench.answer("goapp")
    for kind in ("baseline", "timeouts", "gin", "tutorial"):
        if bench.answer(kind) != goapp:
            raise PartFailed(f"{kind} answers {bench.answer(kind)} but goapp answers {goapp}: make them equal")
    table = subjects(bench.token)
    # Rounds alternate the order (A B C…, then …C B A) so a drift in machine load hits every subject alike.
    for run in range(1, knobs.service_runs + 1):
        for name in SERVICE_ORDER if run % 2 else reversed(SERVICE_ORDER):
            bench.measure(records, name, table[name], run)
    records.record("connections", "all", 0, knobs.connections, "connections")
    records.record("duration", "all", 0, knobs.duration.removesuffix("s"), "s")
    instructions(ctx, bench, records)
    records.measured()


INSTRUCTION_SUBJECTS = ("goapp", "goapp-quiet", "tutorial", "baseline", "timeouts", "gin")


def instructions(ctx: Context, bench: Service, records: Records) -> None:
    """CPU instructions per /hello under callgrind: a figure that holds still on this noisy machine (see
    bench/callgrind.py for how it is taken without a signal reaching the server), in interleaved rounds."""
    try:
        version = callgrind.valgrind_version()
    except callgrind.MeasurementError as error:
        raise PartFailed(str(error)) from None
    requests = ctx.knobs.callgrind_requests
    log(f"service: instructions under valgrind {version}, requests {requests[0]} to {requests[-1]}")
    records.record("callgrind_from", "all", 0, requests[0], "requests")
    records.record("callgrind_to", "all", 0, requests[-1], "requests")
    for run in range(1, ctx.knobs.callgrind_rounds + 1):
        for kind in INSTRUCTION_SUBJECTS if run % 2 else reversed(INSTRUCTION_SUBJECTS):
            log(f"service: instructions of {kind}, round {run}/{ctx.knobs.callgrind_rounds}")
            if kind in ("goapp", "goapp-quiet"):
                data_dir = ctx.work / f"callgrind-data-{kind}-{run}"
                data_dir.mkdir()
                argv, env, ready = [str(bench.binaries["goapp"])], bench.goapp_env(kind, data_dir, "{port}"), "/readyz"
            else:
                argv, env, ready = bench.floor_argv(kind, "127.0.0.1:{port}"), {"GOMAXPROCS": "1"}, None
            try:
                measured = callgrind.measure(
                    argv, requests=requests, env=env, ready_path=ready, cpu=ctx.knobs.server_cpu
                )
            except callgrind.MeasurementError as error:
                raise PartFailed(f"callgrind on {kind}: {error}") from None
            records.record("instructions", f"{kind}-hello", run, f"{measured.per_request:.0f}", "instructions/request")


# --- image ---------------------------------------------------------------------------------------------------


def docker_cpu_ns() -> int | None:
    """CPU time of all Docker containers so far: cgroup v1 with the cgroupfs driver charges every build step's
    container to this group, also after it is removed. Wall time moves with the other builds on this machine, CPU
    time much less, so both are recorded."""
    usage = Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")
    return int(usage.read_text()) if usage.is_file() else None


def image(ctx: Context) -> None:
    knobs = ctx.knobs
    if subprocess.run([str(project.DOCKER_UP)], capture_output=True, check=False).returncode != 0:
        raise NotMeasured("Docker is not available (tools/docker/up.sh failed)")
    printed = subprocess.run([str(project.BASE_IMAGES)], capture_output=True, text=True, check=False)
    bases = dict(re.findall(r"^(GO_IMAGE|RUNTIME_IMAGE)=(\S+)$", printed.stdout, re.M))
    if printed.returncode != 0 or len(bases) != 2:
        raise NotMeasured(f"base images are missing (tools/docker/base-images.sh: {printed.stderr.strip()[-200:]})")
    records = Records(knobs.data, "image")
    records.begin()
    source, tags = ctx.work / "goapp-src", []
    # The one-line change is made in a copy: the repository's goapp/ is never touched.
    shutil.copytree(REPO / "goapp", source)
    set_message = str(project.SET_DEFAULT_MESSAGE)
    # Changed once before the first cold build too, so a constant that moved fails here, not after a build.
    ctx.run("set-message-0", [set_message, str(source), "Hello from Gin! (bench 0)"])
    goproxy = subprocess.run(["go", "env", "GOPROXY"], capture_output=True, text=True, check=True).stdout.strip()

    def build(metric: str, run: int, tag: str, *flags: str) -> None:
        before = docker_cpu_ns()
        command = [
            "nice",
            "-n",
            "10",
            "docker",
            "build",
            *flags,
            "--network",
            "host",
            "--build-arg",
            f"GO_IMAGE={bases['GO_IMAGE']}",
            "--build-arg",
            f"RUNTIME_IMAGE={bases['RUNTIME_IMAGE']}",
            "--build-arg",
            f"GOPROXY={goproxy}",
            "--build-arg",
            "VERSION=bench",
            "--build-arg",
            "COMMIT=bench",
            "-t",
            tag,
            str(source),
        ]
        seconds = ctx.timed(f"{metric}-{run}", command, env={**os.environ, "DOCKER_BUILDKIT": "0"})
        after = docker_cpu_ns()
        records.record(metric, "goapp", run, seconds, "s")
        if before is not None and after is not None:
            records.record(f"{metric}_cpu", "goapp", run, f"{(after - before) / 1e9:.3f}", "s")
        tags.append(tag)

    for run in range(1, knobs.image_runs + 1):
        log(f"image: cold build run {run}/{knobs.image_runs}")
        build("cold_build", run, f"goapp-bench:cold-{run}", "--no-cache")
        # A real code change (a constant, not a comment), one line, so the compile step must run again.
        ctx.run(f"set-message-{run}", [set_message, str(source), f"Hello from Gin! (bench {run})"])
        log(f"image: warm rebuild run {run}/{knobs.image_runs}")
        build("warm_rebuild", run, f"goapp-bench:warm-{run}")
        if "Using cache" not in ctx.log_file(f"warm_rebuild-{run}").read_text():
            raise PartFailed("the warm rebuild used no cached layer")
    last = f"goapp-bench:cold-{knobs.image_runs}"
    image_bytes = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", last], capture_output=True, text=True, check=True
    ).stdout.strip()
    container = subprocess.run(["docker", "create", last], capture_output=True, text=True, check=True).stdout.strip()
    binary = ctx.work / "goapp.bin"
    subprocess.run(["docker", "cp", f"{container}:/goapp", str(binary)], capture_output=True, check=True)
    subprocess.run(["docker", "rm", container], capture_output=True, check=True)
    # The binary must already be stripped (the Dockerfile links with -s -w), or the ratio flatters the image.
    sections = subprocess.run(["readelf", "-S", str(binary)], capture_output=True, text=True, check=False).stdout
    if ".symtab" in sections:
        raise PartFailed("the image's /goapp still has a symbol table: the ratio would be against an unstripped binary")
    records.record("image_size", "goapp", 1, image_bytes, "bytes")
    records.record("binary_size", "goapp", 1, binary.stat().st_size, "bytes")
    subprocess.run(["docker", "rmi", *tags], capture_output=True, check=False)
    records.measured()


# --- engine --------------------------------------------------------------------------------------------------


@dataclass
class Program:
    """A Pulumi program previewed in render mode from its own copy and state, timed through ops.engine."""

    name: str
    engine: Engine
    stack: str
    config_file: Path | None = None

    def preview(self) -> tuple[float, str]:
        start = time.monotonic()
        plan = self.engine.preview(
            self.stack, diff=True, config_file=str(self.config_file) if self.config_file else None
        )
        return round(time.monotonic() - start, 3), plan.out


def engine(ctx: Context) -> None:
    knobs, work = ctx.knobs, ctx.work
    try:
        toolchain = bootstrap()
    except ToolchainError as error:
        raise NotMeasured(f"the Pulumi engine is not built ({error})") from None
    records = Records(knobs.data, "engine")
    records.begin()
    digest = "sha256:" + hashlib.sha256(b"goapp-bench").hexdigest()
    stamps = {
        "PULUMI_CONFIG_PASSPHRASE": "",
        "GOAPP_VERSION": "bench",
        "GOAPP_COMMIT": "bench",
        "GOAPP_IMAGE_DIGEST": digest,
    }

    def copy_of(source: Path, name: str) -> Path:
        destination = work / name
        destination.mkdir()
        for file in source.glob("*"):
            if file.is_file():
                shutil.copy(file, destination)
        (destination / ".venv").symlink_to(REPO / ".venv")
        return destination

    def state(name: str) -> str:
        (work / f"state-{name}").mkdir()
        return f"file://{work}/state-{name}"

    # goapp's program runs from the repository with a copy of the measured stack's file as --config-file, so
    # neither stacks/ nor .pulumi-state/ is touched; the floor and the services programs run from copies.
    stack = PREVIEWED_STACK
    stack_config = work / f"Pulumi.{stack}.yaml"
    shutil.copy(project.STACKS_DIR / f"Pulumi.{stack}.yaml", stack_config)
    programs = {
        stack: Program(
            stack,
            Engine(REPO, state(stack), toolchain, env={**stamps, "GOAPP_RENDER_DIR": str(work / f"render-{stack}")}),
            stack,
            stack_config,
        ),
        "floor": Program(
            "floor",
            Engine(
                copy_of(REPO / "bench" / "floor", "floor"),
                state("floor"),
                toolchain,
                env={**stamps, "BENCH_RENDER_DIR": str(work / "render-floor")},
            ),
            "floor",
        ),
    }
    services = copy_of(REPO / "bench" / "services", "services")
    for count in SERVICE_COUNTS:
        env = {**stamps, "BENCH_SERVICES": str(count), "BENCH_RENDER_DIR": str(work / f"render-services-{count}")}
        programs[f"services-{count}"] = Program(
            f"services-{count}", Engine(services, state(f"services-{count}"), toolchain, env=env), f"services-{count}"
        )

    def preview(name: str) -> float:
        try:
            seconds, out = programs[name].preview()
        except EngineError as error:
            raise PartFailed(f"preview of {name} failed: {error}") from None
        ctx.log_file(f"preview-{name}").write_text(out)
        return seconds

    # One unrecorded preview each warms the page cache and writes Python's bytecode caches.
    log("engine: warm-up previews")
    for name in programs:
        preview(name)
        records.record(
            "resources", name, 0, parsers.created_resources(ctx.log_file(f"preview-{name}").read_text()), "resources"
        )
    for run in range(1, knobs.runs + 1):
        log(f"engine: previews run {run}/{knobs.runs}")
        pair = (stack, "floor") if run % 2 else ("floor", stack)
        # Rotate the service counts, so no count always runs first or last in a round.
        rotated = [f"services-{SERVICE_COUNTS[(i + run) % len(SERVICE_COUNTS)]}" for i in range(len(SERVICE_COUNTS))]
        for name in (*pair, *rotated):
            records.record("preview", name, run, preview(name), "s")

    # The same selection as `make unit`, read from the one file both use.
    unit_command = [".venv/bin/python", "-m", "pytest", "-q", "-m", project.unit_selection(), "tests"]
    (knobs.data / "unit-command.txt").write_text(command_line(unit_command) + "\n")
    for run in range(1, knobs.runs + 1):
        log(f"engine: unit suite run {run}/{knobs.runs}")
        records.record("unit_suite", "pytest", run, ctx.timed("unit", unit_command, cwd=REPO), "s")
    passed = re.findall(r"(\d+) passed", ctx.log_file("unit").read_text())
    records.record("unit_tests", "pytest", 0, passed[-1] if passed else 0, "tests")
    records.measured()


# --- cluster -------------------------------------------------------------------------------------------------


def cluster(ctx: Context) -> None:
    """The cluster part on this machine's cluster: started for the part when it is not running, and then stopped
    again after it (its ports are the machine's), as the end-to-end tests do."""
    status = subprocess.run([str(project.CLUSTER_SH), "status"], capture_output=True, text=True, check=False)
    running = status.returncode == 0 and not re.search(r"^(kube-apiserver|kubelet)\s+stopped", status.stdout, re.M)
    if not running:
        log("cluster: starting the local cluster (stopped again after this part)")
        try:
            ctx.run("cluster-up", [str(project.CLUSTER_SH), "up"])
        except PartFailed as failure:
            raise NotMeasured(f"the local cluster does not start: {failure}") from None
    try:
        cluster_measured(ctx)
    finally:
        if not running:
            subprocess.run([str(project.CLUSTER_SH), "stop"], capture_output=True, timeout=300, check=False)


def cluster_measured(ctx: Context) -> None:
    knobs, work = ctx.knobs, ctx.work
    # A first `make up` (not recorded) makes the later ones warm: image cached, stack deployed.
    log("cluster: first make up (warm-up, not recorded)")
    try:
        ctx.run("up-0", ["make", "-C", str(REPO), "up"])
    except PartFailed as failure:
        raise NotMeasured(f"make up fails: {failure}") from None
    records = Records(knobs.data, "cluster")
    records.begin()
    for run in range(1, knobs.runs + 1):
        log(f"cluster: warm make up run {run}/{knobs.runs}")
        records.record("warm_make_up", "local", run, ctx.timed(f"up-{run}", ["make", "-C", str(REPO), "up"]), "s")

    toolchain = bootstrap(build=False)
    backend = os.environ.get("PULUMI_BACKEND_URL") or f"file://{project.STATE_DIR}"
    engine_ = Engine(REPO, backend, toolchain, env={"PULUMI_CONFIG_PASSPHRASE": ""})
    url = str(engine_.outputs("local")["url"])
    kubectl = [str(kubectl_path()), "--kubeconfig", str(project.cache() / "cluster" / "kubeconfig")]
    namespace = str(engine_.outputs("local")["namespace"])
    # The config change goes into a copy of the stack's config file; stacks/ is not edited.
    config_file = work / "Pulumi.local.yaml"
    shutil.copy(project.STACKS_DIR / "Pulumi.local.yaml", config_file)
    for run in range(1, knobs.runs + 1):
        message = f"Hello from the local stack! (bench rollout {run}, {int(time.time())})"
        document = yaml.safe_load(config_file.read_text())
        document["config"]["goapp:env"]["APP_MESSAGE"] = message
        config_file.write_text(yaml.safe_dump(document))
        log(f"cluster: config change rollout run {run}/{knobs.runs}")
        lines: list[str] = []
        old_pods = pod_uids(kubectl, namespace)
        start = time.monotonic()
        try:
            engine_.up("local", on_output=lines.append, config_file=str(config_file))
        except EngineError as error:
            raise PartFailed(f"rollout failed: {error}") from None
        returned = time.monotonic() - start
        ctx.log_file(f"rollout-{run}").write_text("\n".join(lines))
        if not any(re.search(r"Deployment.*updat", line) for line in lines):
            raise PartFailed(
                f"the config change did not update the Deployment; see {ctx.cache}/logs/cluster/rollout-{run}.log"
            )
        # A rollout is over when clients see the new setting.
        if not wait_for_message(f"{url}/hello", message, seconds=180):
            raise PartFailed(f"{url}/hello did not answer {message!r} within 180s")
        records.record("config_pulumi_up", "local", run, f"{returned:.3f}", "s")
        records.record("config_rollout", "local", run, f"{time.monotonic() - start:.3f}", "s")
        # The rollout is over for the cluster when the last old pod (preStop, drain, graceful stop) is gone.
        deadline = time.monotonic() + 300
        while old_pods & pod_uids(kubectl, namespace, terminating=True):
            if time.monotonic() > deadline:
                raise PartFailed("old pods still there 300 s after the config change")
            time.sleep(0.2)
        records.record("config_last_old_pod_gone", "local", run, f"{time.monotonic() - start:.3f}", "s")
    log("cluster: restoring the stack's own config")
    try:
        engine_.up("local")
    except EngineError as error:
        raise PartFailed(f"restoring the local stack failed: {error}") from None
    against_kubectl(ctx, records, engine_, toolchain)
    hpa_first_pod(ctx, records, toolchain, kubectl, str(engine_.outputs("local")["imageRef"]).split("@", 1)[1])
    records.measured()


def pod_uids(kubectl: list[str], namespace: str, terminating: bool = False) -> set[str]:
    """The uids of goapp's pods in a namespace (terminating ones too when asked)."""
    done = subprocess.run(
        [*kubectl, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=goapp", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    items = json.loads(done.stdout)["items"]
    return {p["metadata"]["uid"] for p in items if terminating or p["metadata"].get("deletionTimestamp") is None}


HPA_NAMESPACE = "goapp-hpa-bench"


def hpa_first_pod(ctx: Context, records: Records, toolchain: Toolchain, kubectl: list[str], digest: str) -> None:
    """How long the HPA takes to add a pod under CPU load: an autoscaled copy of the local stack (1–3 replicas, 50 %
    of a 20m request, a 10 s scale-down window so each round starts from one pod), loaded with /hello through the
    gateway until the Deployment asks for a second replica; bounded in time, loopback only."""
    work = ctx.work / "hpa-copy"
    (work / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", work / "Pulumi.yaml")
    shutil.copytree(REPO / "infra", work / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    (work / ".venv").symlink_to(REPO / ".venv")
    document = yaml.safe_load((project.STACKS_DIR / "Pulumi.local.yaml").read_text())
    config = document["config"]
    config["goapp:namespace"] = HPA_NAMESPACE
    config["goapp:service"] = {**config["goapp:service"], "nodePort": 30090}
    host = f"{HPA_NAMESPACE}.test"
    config["goapp:url"] = f"http://{host}:8000"
    config.pop("goapp:replicas", None)
    config["goapp:resources"] = {
        "requests": {"cpu": "20m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    config["goapp:autoscaling"] = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "cpuUtilization": 50,
        "scaleDown": {"stabilizationSeconds": 10, "podsPerMinute": 4, "percentPerMinute": 100},
    }
    (work / "stacks" / "Pulumi.local.yaml").write_text(yaml.safe_dump(document))
    (ctx.work / "state-hpa").mkdir()
    copy = Engine(
        work,
        f"file://{ctx.work}/state-hpa",
        toolchain,
        env={"GOAPP_IMAGE_DIGEST": digest, "GOAPP_VERSION": "bench", "GOAPP_COMMIT": "bench"},
    )

    def replicas() -> int:
        done = subprocess.run(
            [*kubectl, "get", "deployment", "goapp", "-n", HPA_NAMESPACE, "-o", "jsonpath={.spec.replicas}"],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(done.stdout or 0)

    try:
        copy.up("local")
        for run in range(1, ctx.knobs.runs + 1):
            wait_until(lambda: replicas() == 1, 300, "the HPA copy to be back at one pod")
            log(f"cluster: HPA under load, run {run}/{ctx.knobs.runs}")
            stop = threading.Event()
            workers = [start_thread(load_hello, host, stop) for _ in range(6)]
            start = time.monotonic()
            try:
                wait_until(lambda: replicas() > 1, 300, "the HPA to add a pod under load")
                records.record("hpa_first_pod", "local", run, f"{time.monotonic() - start:.3f}", "s")
            finally:
                stop.set()
                for worker in workers:
                    worker.join(timeout=30)
    except EngineError as error:
        raise PartFailed(f"the HPA copy: {error}") from None
    finally:
        with contextlib.suppress(EngineError):
            copy.destroy("local")
        subprocess.run(
            [*kubectl, "delete", "namespace", HPA_NAMESPACE, "--wait=false"], capture_output=True, check=False
        )


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise PartFailed(f"timed out after {seconds:g}s waiting for {what}")
        time.sleep(1)


def start_thread(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def load_hello(host: str, stop: threading.Event, seconds: float = 300) -> None:
    """Keep-alive GET /hello to the gateway on 127.0.0.1:8000 with the copy's host name, until stopped or `seconds`."""
    deadline = time.monotonic() + seconds
    connection = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            connection.request("GET", "/hello", headers={"Host": f"{host}:8000"})
            connection.getresponse().read()
        except OSError:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
            time.sleep(0.1)
    connection.close()


KUBECTL_NAMESPACE = "goapp-kubectl"
KUBECTL_NODE_PORT = 30083


def kubectl_path() -> Path:
    printed = subprocess.run(
        [str(REPO / "tools" / "k8s" / "build.sh"), "print-bin-dirs"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r'KUBE_BIN="?([^"\n]+)', printed)
    if not found:
        raise PartFailed("tools/k8s/build.sh print-bin-dirs names no KUBE_BIN")
    return Path(found[1]) / "kubectl"


def against_kubectl(ctx: Context, records: Records, engine_: Engine, toolchain: Toolchain) -> None:
    """What users would do instead: `kubectl apply --server-side` of the same stack's rendered manifests. A copy of
    the local stack in its own namespace and NodePort is rendered with the digest `pulumi up` deployed and
    applied with kubectl alone (no field manager shared with the engine's copy); then, round by round, a no-change
    `pulumi up` against a no-change apply, and a one-line env change each way until the new pods are ready."""
    knobs, work = ctx.knobs, ctx.work
    kubectl = [str(kubectl_path()), "--kubeconfig", str(project.cache() / "cluster" / "kubeconfig")]
    digest = str(engine_.outputs("local")["imageRef"]).split("@", 1)[1]
    base = yaml.safe_load((project.STACKS_DIR / "Pulumi.local.yaml").read_text())
    copy_dir = work / "kubectl-copy"
    (copy_dir / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", copy_dir / "Pulumi.yaml")
    shutil.copytree(REPO / "infra", copy_dir / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    (copy_dir / ".venv").symlink_to(REPO / ".venv")
    (work / "state-kubectl").mkdir()
    renderer = Engine(
        copy_dir,
        f"file://{work}/state-kubectl",
        toolchain,
        env={"GOAPP_IMAGE_DIGEST": digest, "GOAPP_VERSION": "bench", "GOAPP_COMMIT": "bench"},
    )
    stack_file = copy_dir / "stacks" / "Pulumi.local.yaml"

    def render(message: str) -> Path:
        """The copy's manifests with APP_MESSAGE = message, rendered afresh (what a kubectl pipeline re-runs)."""
        document = dict(base)
        config = dict(document["config"])
        config["goapp:namespace"] = KUBECTL_NAMESPACE
        config["goapp:service"] = {**config["goapp:service"], "nodePort": KUBECTL_NODE_PORT}
        config["goapp:url"] = f"http://127.0.0.1:{KUBECTL_NODE_PORT}"
        config["goapp:env"] = {**config["goapp:env"], "APP_MESSAGE": message}
        document["config"] = config
        stack_file.write_text(yaml.safe_dump(document))
        out = work / "kubectl-render"
        shutil.rmtree(out, ignore_errors=True)
        renderer.remove("local")
        try:
            renderer.up("local", env={"GOAPP_RENDER_DIR": str(out)})
        except EngineError as error:
            raise PartFailed(f"rendering the kubectl copy failed: {error}") from None
        return out

    def apply(manifests: Path, name: str) -> None:
        # Namespaces first, as a kubectl user lists them: kubectl applies files in the order it is given.
        files = sorted(manifests.rglob("*.yaml"), key=lambda f: ("-namespace-" not in f.name, str(f)))
        ctx.run(
            name,
            [
                *kubectl,
                "apply",
                "--server-side",
                "--field-manager",
                "bench-kubectl",
                *(word for f in files for word in ("-f", str(f))),
            ],
        )

    def rolled_out(name: str) -> None:
        ctx.run(name, [*kubectl, "rollout", "status", "-n", KUBECTL_NAMESPACE, "deployment/goapp", "--timeout=300s"])

    message = "Hello from the kubectl copy! (bench 0)"
    manifests = render(message)
    apply(manifests, "kubectl-apply-0")
    rolled_out("kubectl-rollout-0")
    try:
        for run in range(1, knobs.runs + 1):
            log(f"cluster: no-change deployments, pulumi vs kubectl, run {run}/{knobs.runs}")
            for tool in ("pulumi", "kubectl") if run % 2 else ("kubectl", "pulumi"):
                start = time.monotonic()
                if tool == "pulumi":
                    engine_.up("local")
                else:
                    apply(manifests, f"kubectl-noop-{run}")
                records.record("noop_deploy", tool, run, f"{time.monotonic() - start:.3f}", "s")
            log(f"cluster: env change to ready, pulumi vs kubectl, run {run}/{knobs.runs}")
            for tool in ("pulumi", "kubectl") if run % 2 else ("kubectl", "pulumi"):
                message = f"Hello ({tool} change {run}, {int(time.time())})"
                start = time.monotonic()
                if tool == "pulumi":
                    document = yaml.safe_load((project.STACKS_DIR / "Pulumi.local.yaml").read_text())
                    document["config"]["goapp:env"]["APP_MESSAGE"] = message
                    changed = work / "Pulumi.local.change.yaml"
                    changed.write_text(yaml.safe_dump(document))
                    engine_.up("local", config_file=str(changed))
                else:
                    manifests = render(message)
                    rendered = time.monotonic()
                    apply(manifests, f"kubectl-change-{run}")
                    rolled_out(f"kubectl-change-rollout-{run}")
                    records.record("change_render", "kubectl", run, f"{rendered - start:.3f}", "s")
                records.record("change_to_ready", tool, run, f"{time.monotonic() - start:.3f}", "s")
        engine_.up("local")
    except EngineError as error:
        raise PartFailed(f"pulumi up failed: {error}") from None
    finally:
        subprocess.run(
            [*kubectl, "delete", "namespace", KUBECTL_NAMESPACE, "--wait=false"], capture_output=True, check=False
        )


def wait_for_message(url: str, message: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if message.encode() in http_get(url)[1]:
                return True
        time.sleep(0.1)
    return False


# --- go ------------------------------------------------------------------------------------------------------


def go_benchmarks(ctx: Context) -> None:
    knobs = ctx.knobs
    if not any("func Benchmark" in p.read_text() for p in (REPO / "goapp").rglob("*_test.go")):
        raise NotMeasured("goapp/ has no Go benchmarks (no func Benchmark... in any *_test.go)")
    records = Records(knobs.data, "go")
    records.begin()
    command = [
        "go",
        "test",
        "-run",
        "^$",
        "-bench",
        ".",
        "-benchmem",
        "-benchtime",
        knobs.go_benchtime,
        "-count",
        str(knobs.go_count),
        "./...",
    ]
    (knobs.data / "go-command.txt").write_text(f"cd goapp && {command_line(command)}\n")
    log(f"go: {command_line(command)}")
    ctx.run("go-bench", ["nice", "-n", "10", *command], cwd=REPO / "goapp")
    output = knobs.out_dir / "go-bench.txt"
    shutil.copy(ctx.log_file("go-bench"), output)
    names = parsers.benchmark_names(output.read_text())
    records.record(
        "benchmark_lines",
        "goapp",
        0,
        sum(1 for line in output.read_text().splitlines() if line.startswith("Benchmark")),
        "lines",
    )
    # Run beside the file so benchstat's column header is the file's name, not this machine's path.
    summary = subprocess.run(
        [str(benchstat_path(ctx)), "go-bench.txt"], cwd=knobs.out_dir, capture_output=True, text=True, check=False
    )
    rows = parsers.parse_benchstat(summary.stdout)
    understood = {row.benchmark for row in rows}
    missing = sorted(name for name in names if name.removeprefix("Benchmark") not in understood)
    if summary.returncode != 0 or missing:
        raise PartFailed(f"benchstat cannot read {output} (missing {missing[:3]}): {summary.stderr.strip()[-200:]}")
    (knobs.data / "go-benchstat.txt").write_text(summary.stdout)
    records.measured()


# --- report and main -----------------------------------------------------------------------------------------


def report(ctx: Context) -> None:
    machine(ctx)
    out = ctx.knobs.out_dir
    subprocess.run(
        [
            str(chart_venv(ctx) / "bin" / "python"),
            str(REPO / "bench" / "report.py"),
            "--data",
            str(ctx.knobs.data),
            "--out",
            str(out / "results.md"),
            "--chart",
            str(out / "latency.png"),
        ],
        check=True,
    )
    log(f"wrote {out / 'results.md'} and {out / 'latency.png'}")


PART_RUNNERS: dict[str, Callable[[Context], None]] = {
    "service": service,
    "image": image,
    "engine": engine,
    "cluster": cluster,
    "go": go_benchmarks,
}


def run_part(ctx: Context, part: str) -> bool:
    """A failing part records why and stops only itself (and the servers it started); the others still run."""
    try:
        PART_RUNNERS[part](ctx)
    except NotMeasured as reason:
        Records(ctx.knobs.data, part).not_measured(str(reason))
    except (PartFailed, parsers.ParseError, subprocess.CalledProcessError, OSError) as error:
        Records(ctx.knobs.data, part).not_measured(f"failed: {error}")
        return False
    finally:
        ctx.stop_started()
        ctx.keep_logs(part)
    return True


@contextlib.contextmanager
def context(knobs: Knobs) -> Iterator[Context]:
    with tempfile.TemporaryDirectory(prefix="goapp-bench.") as work:
        ctx = Context(knobs=knobs, work=Path(work))
        try:
            yield ctx
        finally:
            ctx.stop_started()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "all"
    allowed = ("all", "setup", *PARTS, "report")
    if command not in allowed or len(args) > 1:
        log(f"unknown part {' '.join(args)!r} (allowed: {', '.join(allowed)})")
        return 2
    try:
        knobs = Knobs.from_env(os.environ)
    except KnobError as error:
        log(str(error))
        return 2
    with context(knobs) as ctx:
        try:
            setup(ctx)
        except (PartFailed, subprocess.CalledProcessError) as error:
            log(f"setup failed: {error}")
            return 1
        if command == "setup":
            return 0
        parts = PARTS if command == "all" else ((command,) if command in PARTS else ())
        failed = [part for part in parts if not run_part(ctx, part)]
        report(ctx)
    if failed:
        log(f"failed parts: {' '.join(failed)} (the reasons are in {knobs.out_dir / 'results.md'})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
